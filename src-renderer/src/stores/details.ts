/**
 * What the Details view shows: one resource (a queue, an exchange, a topic, a
 * consumer group) or, with none chosen, the connection itself. Each is read
 * alone (`queues/get`, `exchanges/get`, `topics/get`, `groups/get`) and kept
 * per connection and resource, so coming back to one shows it at once while a
 * fresh read runs. What is asked follows the connection's capabilities, never
 * its kind. The actions of the view (Get messages, offset resets, deleting a
 * group) live here too and refresh what they changed.
 */
import { defineStore } from 'pinia';
import { computed, shallowRef } from 'vue';
import type {
  BindingInfo,
  ClusterOverview,
  ConsumerInfo,
  ExchangeInfo,
  GroupInfo,
  GroupOffsetsPreview,
  MessageView,
  PolicyInfo,
  QueueInfo,
  TopicConfigEntry,
  TopicInfo,
  VhostInfo,
} from '@contract/types';
import type { Input } from '@contract/operations';
import { api, describeError } from '../api/client';
import { useConnections, type ResourceRef } from './connections';
import { useResources } from './resources';

export interface Details {
  connectionId: string;
  resource: ResourceRef | null;
  queue: QueueInfo | null;
  exchange: ExchangeInfo | null;
  topic: TopicInfo | null;
  /** Every setting of the topic with where it comes from (connections with `topicConfig`). */
  topicConfig: TopicConfigEntry[] | null;
  group: GroupInfo | null;
  /** A queue's bindings (to it), an exchange's (from it, and to it from other exchanges). */
  bindings: BindingInfo[] | null;
  consumers: ConsumerInfo[] | null;
  cluster: ClusterOverview | null;
  vhosts: VhostInfo[] | null;
  policies: PolicyInfo[] | null;
  /** Per section: why it could not be loaded. */
  errors: Record<string, string>;
  loading: boolean;
  loadedAt: number | null;
}

/** Resources remembered besides the one shown (each a few tables of figures). */
const KEEP = 20;

export function detailsKey(connectionId: string, res: ResourceRef | null): string {
  return res ? `${connectionId}\u0000${res.kind}\u0000${res.name}` : connectionId;
}

function blank(connectionId: string, resource: ResourceRef | null): Details {
  return {
    connectionId,
    resource,
    queue: null,
    exchange: null,
    topic: null,
    topicConfig: null,
    group: null,
    bindings: null,
    consumers: null,
    cluster: null,
    vhosts: null,
    policies: null,
    errors: {},
    loading: false,
    loadedAt: null,
  };
}

/** The topic's own settings first, then what it inherits from the broker. */
function byOwnFirst(entries: TopicConfigEntry[]): TopicConfigEntry[] {
  return [...entries].sort((a, b) => Number(b.source === 'topic') - Number(a.source === 'topic') || a.name.localeCompare(b.name));
}

export const useDetails = defineStore('details', () => {
  const connections = useConnections();
  const resources = useResources();
  /** Replaced whole on every change, and kept shallow: the entries are plain figures. */
  const entries = shallowRef<ReadonlyMap<string, Details>>(new Map());
  /** The latest load of each key; an older one that answers late is dropped. */
  const generations = new Map<string, number>();

  const currentKey = computed(() => detailsKey(connections.scopeId, connections.resource));
  const current = computed<Details>(() => entries.value.get(currentKey.value) ?? blank(connections.scopeId, connections.resource));

  function patch(key: string, change: Partial<Details>) {
    const prev = entries.value.get(key);
    if (!prev) return;
    const next = new Map(entries.value);
    next.delete(key);
    next.set(key, { ...prev, ...change });
    entries.value = next;
  }

  function remember(key: string, entry: Details) {
    const next = new Map(entries.value);
    next.delete(key);
    next.set(key, entry);
    // The least recently loaded go first; the one being shown is always the newest.
    for (const k of next.keys()) {
      if (next.size <= KEEP) break;
      next.delete(k);
      generations.delete(k);
    }
    entries.value = next;
  }

  /** Reads what the selected connection and resource show; sections load side by side, each with its own error. */
  async function load(): Promise<void> {
    const connectionId = connections.scopeId;
    const res = connections.resource;
    const key = detailsKey(connectionId, res);
    const gen = (generations.get(key) ?? 0) + 1;
    generations.set(key, gen);
    // Figures already shown stay while the fresh ones load; errors are asked again.
    const prev = entries.value.get(key);
    remember(key, { ...(prev ?? blank(connectionId, res)), errors: {}, loading: true });
    const can = connections.can;
    const tasks: Array<Promise<void>> = [];
    const section = <K extends keyof Details>(name: string, field: K, task: () => Promise<Details[K]>) =>
      tasks.push(
        task().then(
          (value) => {
            if (generations.get(key) === gen) patch(key, { [field]: value } as Partial<Details>);
          },
          (e: unknown) => {
            if (generations.get(key) !== gen) return;
            const errors = { ...(entries.value.get(key)?.errors ?? {}), [name]: describeError(e) };
            patch(key, { [field]: null, errors } as Partial<Details>);
          },
        ),
      );

    if (!res) {
      if (can('cluster')) section('cluster', 'cluster', () => api.call('cluster/overview', { connectionId }));
      if (can('vhosts')) section('vhosts', 'vhosts', () => api.call('vhosts/list', { connectionId }));
      if (can('policies')) section('policies', 'policies', () => api.call('policies/list', { connectionId }));
    } else if (res.kind === 'queue') {
      section('queue', 'queue', () => api.call('queues/get', { connectionId, queue: res.name }));
      section('bindings', 'bindings', async () => (await api.call('bindings/list', { connectionId })).filter((b) => b.destinationType === 'queue' && b.destination === res.name));
      section('consumers', 'consumers', () => api.call('consumers/list', { connectionId, queue: res.name }));
    } else if (res.kind === 'exchange') {
      section('exchange', 'exchange', () => api.call('exchanges/get', { connectionId, exchange: res.name }));
      section('bindings', 'bindings', async () =>
        (await api.call('bindings/list', { connectionId })).filter((b) => b.source === res.name || (b.destinationType === 'exchange' && b.destination === res.name)),
      );
    } else if (res.kind === 'topic') {
      section('topic', 'topic', () => api.call('topics/get', { connectionId, topic: res.name }));
      if (can('topicConfig')) section('config', 'topicConfig', async () => byOwnFirst(await api.call('topics/config', { connectionId, topic: res.name })));
    } else {
      section('group', 'group', () => api.call('groups/get', { connectionId, groupId: res.name }));
    }
    await Promise.all(tasks);
    if (generations.get(key) === gen) patch(key, { loading: false, loadedAt: Date.now() });
  }

  /** Takes up to `count` ready messages of a queue with an ack mode, then reads the queue again. */
  async function getMessages(queue: string, count: number, ackMode: Input<'queues/getMessages'>['ackMode'], allowQuorumPeek: boolean): Promise<MessageView[]> {
    const messages = await api.call('queues/getMessages', { connectionId: connections.scopeId, queue, count, ackMode, ...(allowQuorumPeek ? { allowQuorumPeek } : {}) });
    void load();
    return messages;
  }

  async function previewReset(input: Input<'groups/previewReset'>): Promise<GroupOffsetsPreview> {
    return api.call('groups/previewReset', input);
  }

  /** Applies an offset reset, then reads the group again. */
  async function resetOffsets(input: Input<'groups/resetOffsets'>): Promise<GroupOffsetsPreview> {
    const done = await api.call('groups/resetOffsets', input);
    await load();
    return done;
  }

  /** Deletes a group, forgets its details and goes back to the connection's. */
  async function deleteGroup(groupId: string): Promise<void> {
    const connectionId = connections.scopeId;
    await api.call('groups/delete', { connectionId, groupId });
    const key = detailsKey(connectionId, { kind: 'group', name: groupId });
    const next = new Map(entries.value);
    next.delete(key);
    entries.value = next;
    connections.open('details', null);
    void resources.refresh();
  }

  return { current, load, getMessages, previewReset, resetOffsets, deleteGroup };
});
