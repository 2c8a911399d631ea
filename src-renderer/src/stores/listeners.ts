import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { AmqpChannelInfo, AmqpConnectionInfo, KafkaClientInfo, ListenerInfo } from '@contract/types';
import type { Input } from '@contract/operations';
import { api, describeError } from '../api/client';

/**
 * The embedded broker's AMQP listener: where apps connect (the port it took
 * when 5672 was busy), the apps connected now, and the channels of those the
 * person opened. Refreshed every two seconds while the view shows it; the next
 * refresh is scheduled only once the previous one has answered.
 */
const REFRESH_MS = 2000;

export const useListeners = defineStore('listeners', () => {
  const listeners = ref<ListenerInfo[]>([]);
  const connections = ref<AmqpConnectionInfo[]>([]);
  /** The clients of the Kafka listener. */
  const kafkaClients = ref<KafkaClientInfo[]>([]);
  /** Channels of the connections whose rows are open, by connection id. */
  const channels = ref<Record<string, AmqpChannelInfo[]>>({});
  const error = ref<string | null>(null);
  const loaded = ref(false);

  const amqp = computed(() => listeners.value.find((l) => l.protocol === 'amqp') ?? null);
  /** The URL an app uses with the default user (guest may connect from this machine only, as in RabbitMQ). */
  const url = computed(() => {
    const l = amqp.value;
    if (!l || l.port === null) return null;
    return `${l.tls ? 'amqps' : 'amqp'}://guest:guest@${l.host}:${l.port}`;
  });

  async function refresh(): Promise<void> {
    try {
      const [list, conns, kafka] = await Promise.all([api.call('listeners/list', {}), api.call('listeners/amqpConnections', {}), api.call('listeners/kafkaConnections', {})]);
      listeners.value = list;
      connections.value = conns;
      kafkaClients.value = kafka;
      const open = new Set(conns.map((c) => c.id));
      const expanded = Object.keys(channels.value);
      for (const id of expanded) if (!open.has(id)) delete channels.value[id];
      await Promise.all(Object.keys(channels.value).map((id) => loadChannels(id)));
      error.value = null;
    } catch (e) {
      error.value = describeError(e);
    } finally {
      loaded.value = true;
    }
  }

  async function loadChannels(id: string): Promise<void> {
    try {
      channels.value = { ...channels.value, [id]: await api.call('listeners/amqpChannels', { id }) };
    } catch {
      // It closed between two looks; the next refresh drops its row.
      const { [id]: _gone, ...rest } = channels.value;
      channels.value = rest;
    }
  }

  function toggle(id: string): void {
    if (channels.value[id]) {
      const { [id]: _closed, ...rest } = channels.value;
      channels.value = rest;
    } else {
      channels.value = { ...channels.value, [id]: [] };
      void loadChannels(id);
    }
  }

  /** Moves, turns off or on, or secures a listener; refreshed with what it became. */
  async function configure(input: Input<'listeners/configure'>): Promise<ListenerInfo> {
    const done = await api.call('listeners/configure', input);
    await refresh();
    return done;
  }

  async function close(id: string, reason: string): Promise<void> {
    await api.call('listeners/amqpClose', { id, reason });
    await refresh();
  }

  async function closeKafka(id: string): Promise<void> {
    await api.call('listeners/kafkaClose', { id });
    await refresh();
  }

  let timer: ReturnType<typeof setTimeout> | null = null;
  /** Views showing the listener now; it is refreshed while there is one. */
  let watchers = 0;
  /** Bumped at each start and stop of the refreshing, so that a refresh still in flight from an earlier start schedules nothing. */
  let generation = 0;
  function start(): void {
    if (++watchers > 1) return;
    const mine = ++generation;
    const tick = async () => {
      await refresh();
      if (generation === mine) timer = setTimeout(() => void tick(), REFRESH_MS);
    };
    void tick();
  }
  function stop(): void {
    watchers = Math.max(0, watchers - 1);
    if (watchers > 0) return;
    generation++;
    if (timer) clearTimeout(timer);
    timer = null;
  }

  return { listeners, connections, kafkaClients, channels, error, loaded, amqp, url, refresh, toggle, configure, close, closeKafka, start, stop };
});
