/**
 * The selected connection's resources. Queues and group lag come from the
 * `stats` stream (about once a second); exchanges and topics are listed on
 * demand and every few seconds. Arrays are replaced whole and kept shallow:
 * 5,000 queues a second must not become 5,000 deep proxies a second.
 *
 * Opening a connection asks for the first page of queues on its own (RabbitMQ
 * serves it from the management API's paginated list, far quicker than all of a
 * big vhost), so its first rows paint at once; the whole list follows behind it.
 */
import { defineStore } from 'pinia';
import { ref, shallowRef, watch } from 'vue';
import type { ExchangeInfo, GroupInfo, QueueStats, StatsSnapshot, TopicInfo } from '@contract/types';
import { api, describeError } from '../api/client';
import { useConnections } from './connections';

type GroupSummary = Pick<GroupInfo, 'groupId' | 'state' | 'totalLag'>;

/** Queues asked for first when a connection opens: a screenful and more. */
export const FIRST_PAGE = 100;
/** How long the whole list waits for the first page before it is asked for anyway. */
const FIRST_PAGE_WAIT_MS = 3000;

export const useResources = defineStore('resources', () => {
  const connections = useConnections();
  const queues = shallowRef<QueueStats[]>([]);
  const exchanges = shallowRef<ExchangeInfo[]>([]);
  const topics = shallowRef<TopicInfo[]>([]);
  const groups = shallowRef<GroupSummary[]>([]);
  /**
   * Names only, replaced only when the set of names changes: pickers (selects,
   * datalists) depend on these, so a live sample does not re-render thousands
   * of options every second.
   */
  const queueNames = shallowRef<string[]>([]);
  const topicNames = shallowRef<string[]>([]);
  function syncNames(target: typeof queueNames, names: string[]) {
    const cur = target.value;
    if (cur.length === names.length && cur.every((n, i) => n === names[i])) return;
    target.value = names;
  }
  watch(queues, (q) => syncNames(queueNames, q.map((x) => x.name).sort()));
  watch(topics, (t) => syncNames(topicNames, t.map((x) => x.name).sort()));
  /** When the last live sample arrived; the overview shows it so a stalled feed is visible. */
  const updatedAt = ref<number | null>(null);
  const error = ref<string | null>(null);
  const liveError = ref<string | null>(null);
  const loading = ref(false);
  /** Only the first page of queues is in; the rest is on its way. */
  const partial = ref(false);

  const listeners = new Set<(s: StatsSnapshot) => void>();
  let unsubscribe: (() => void) | null = null;
  let timer: ReturnType<typeof setInterval> | null = null;
  let generation = 0;

  function onSnapshot(fn: (s: StatsSnapshot) => void): () => void {
    listeners.add(fn);
    return () => listeners.delete(fn);
  }

  /** The first page of queues, painted unless the whole list is already in. */
  async function loadFirstPage(connectionId: string, gen: number) {
    try {
      const q = await api.call('queues/list', { connectionId, page: 1, pageSize: FIRST_PAGE });
      if (gen !== generation || wholeList) return;
      queues.value = q;
      // A page shorter than asked is the whole list.
      partial.value = q.length >= FIRST_PAGE;
    } catch {
      // The whole list, asked at the same time, says what is wrong.
    }
  }
  /** Set once a complete list of queues (a live sample or queues/list) has arrived for this connection. */
  let wholeList = false;
  function setWholeQueues(q: QueueStats[]) {
    wholeList = true;
    partial.value = false;
    queues.value = q;
  }

  /** `sampled`: queues and groups come from the stats stream, whose first sample is sent at once. */
  async function loadLists(connectionId: string, gen: number, sampled = false) {
    const info = connections.info(connectionId);
    const caps = info?.capabilities ?? [];
    const tasks: Array<Promise<void>> = [];
    if (caps.includes('queues') && !sampled)
      tasks.push(api.call('queues/list', { connectionId }).then((q) => void (gen === generation && !updatedAt.value && setWholeQueues(q))));
    if (caps.includes('exchanges')) tasks.push(api.call('exchanges/list', { connectionId }).then((x) => void (gen === generation && (exchanges.value = x))));
    if (caps.includes('topics')) tasks.push(api.call('topics/list', { connectionId }).then((t) => void (gen === generation && (topics.value = t))));
    if (caps.includes('groups') && !updatedAt.value && !sampled)
      tasks.push(api.call('groups/list', { connectionId }).then((g) => void (gen === generation && (groups.value = g))));
    const results = await Promise.allSettled(tasks);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (gen === generation) error.value = failed ? `Could not list resources: ${describeError(failed.reason)}` : null;
  }

  async function refresh() {
    const id = connections.scopeId;
    loading.value = true;
    try {
      await loadLists(id, generation);
    } finally {
      loading.value = false;
    }
  }

  /**
   * The stats stream carries every queue each second (about 250 bytes a queue),
   * so it is subscribed only while a view that shows live figures is open
   * (overview, lag); elsewhere the lists are refreshed every few seconds.
   */
  const live = ref(true);
  let currentId: string | null = null;

  function subscribeStats(connectionId: string, gen: number) {
    unsubscribe?.();
    unsubscribe = api.subscribe(
      'stats',
      { connectionId },
      (snapshot) => {
        if (gen !== generation) return;
        setWholeQueues(snapshot.queues);
        groups.value = snapshot.groups;
        updatedAt.value = snapshot.at;
        liveError.value = null;
        for (const fn of listeners) fn(snapshot);
      },
      (e) => {
        if (gen !== generation) return;
        liveError.value = `Live statistics are not available: ${describeError(e)}`;
        void loadLists(connectionId, gen);
      },
    );
  }

  function start(connectionId: string) {
    stop();
    currentId = connectionId;
    const gen = ++generation;
    queues.value = [];
    exchanges.value = [];
    topics.value = [];
    groups.value = [];
    updatedAt.value = null;
    liveError.value = null;
    wholeList = false;
    partial.value = false;
    // The first page goes out alone and paints; the whole list is asked for once it is in,
    // so building a big vhost's list does not slow the page (both would ask the same server).
    // A page that does not come (a broker that does not answer) holds the rest back only so long.
    const first = connections.info(connectionId)?.capabilities.includes('queues')
      ? Promise.race([loadFirstPage(connectionId, gen), new Promise<void>((resolve) => setTimeout(resolve, FIRST_PAGE_WAIT_MS))])
      : Promise.resolve();
    void first.then(() => {
      if (gen !== generation) return;
      // With the stream on, its first sample (sent at once) lists the queues: asking twice
      // would make the core build, and the page parse, 5,000 queues twice on start-up.
      void loadLists(connectionId, gen, live.value);
      if (live.value && !unsubscribe) subscribeStats(connectionId, gen);
    });
    // Topics and exchanges are not in the stats snapshot; a slow poll keeps them current
    // (and queues and groups too while the stats stream is off).
    let ticks = 0;
    timer = setInterval(() => {
      ticks++;
      if (!live.value && ticks % 5 === 0) {
        const caps = connections.selected?.capabilities ?? [];
        if (caps.includes('queues')) api.call('queues/list', { connectionId }).then((q) => gen === generation && !live.value && setWholeQueues(q), () => {});
        if (caps.includes('groups')) api.call('groups/list', { connectionId }).then((g) => gen === generation && !live.value && (groups.value = g), () => {});
      }
      if (ticks % 5 !== 0) return;
      const caps = connections.selected?.capabilities ?? [];
      if (caps.includes('topics')) api.call('topics/list', { connectionId }).then((t) => gen === generation && (topics.value = t), () => {});
      if (caps.includes('exchanges')) api.call('exchanges/list', { connectionId }).then((x) => gen === generation && (exchanges.value = x), () => {});
    }, 1000);
  }

  /** Turns the live stream on (overview, lag) or off (views that do not show live figures). */
  function setLive(on: boolean) {
    if (live.value === on) return;
    live.value = on;
    if (!currentId) return;
    if (on) subscribeStats(currentId, generation);
    else {
      unsubscribe?.();
      unsubscribe = null;
    }
  }

  function stop() {
    unsubscribe?.();
    unsubscribe = null;
    if (timer) clearInterval(timer);
    timer = null;
  }

  // Synchronous: the first page is asked for inside the click that switched connections,
  // before the views of the previous connection are torn down and the new ones rendered.
  watch(
    () => [connections.scopeId, connections.list.length] as const,
    ([id], old) => {
      if (!old || old[0] !== id || currentId !== id) start(id);
    },
    { immediate: true, flush: 'sync' },
  );

  function queue(name: string): QueueStats | undefined {
    return queues.value.find((q) => q.name === name);
  }
  function topic(name: string): TopicInfo | undefined {
    return topics.value.find((t) => t.name === name);
  }

  async function declareQueue(name: string, args: Record<string, unknown>) {
    await api.call('queues/declare', { connectionId: connections.scopeId, queue: name, durable: true, arguments: args });
    await refresh();
  }
  async function purgeQueue(name: string) {
    return api.call('queues/purge', { connectionId: connections.scopeId, queue: name });
  }
  async function deleteQueue(name: string) {
    const r = await api.call('queues/delete', { connectionId: connections.scopeId, queue: name });
    queues.value = queues.value.filter((q) => q.name !== name);
    return r;
  }
  async function createTopic(name: string, partitions: number) {
    await api.call('topics/create', { connectionId: connections.scopeId, topic: name, partitions });
    await refresh();
  }
  async function deleteTopic(name: string) {
    await api.call('topics/delete', { connectionId: connections.scopeId, topic: name });
    topics.value = topics.value.filter((t) => t.name !== name);
  }

  return {
    queues,
    queueNames,
    topicNames,
    exchanges,
    topics,
    groups,
    updatedAt,
    partial,
    error,
    liveError,
    loading,
    onSnapshot,
    setLive,
    refresh,
    queue,
    topic,
    declareQueue,
    purgeQueue,
    deleteQueue,
    createTopic,
    deleteTopic,
  };
});
