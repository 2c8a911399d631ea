/**
 * Pub/Sub channels, shown as topics named `channel:<name>`: Redis keeps no
 * message, so such a topic holds nothing to browse; it lists its subscribers
 * (PUBSUB NUMSUB), takes a publish (PUBLISH, answering how many received it)
 * and has a live tail (SUBSCRIBE, or PSUBSCRIBE when the name holds a glob
 * pattern: `channel:orders.*`). The channels listed are those with at least
 * one subscriber now (PUBSUB CHANNELS), on every node of a cluster.
 */
import type { RecordView, TopicInfo } from '../../contract/types.js';
import { keyNodes, type RedisClient } from './client.js';
import { encodeBytes } from './records.js';
import { duplicate } from './streams.js';

export const CHANNEL_PREFIX = 'channel:';
const MAX_CHANNELS = 1_000;

export const isChannelTopic = (topic: string) => topic.startsWith(CHANNEL_PREFIX) && topic.length > CHANNEL_PREFIX.length;
export const channelOf = (topic: string) => topic.slice(CHANNEL_PREFIX.length);
const isPattern = (channel: string) => /[*?[]/.test(channel);

export function channelTopic(channel: string, subscribers: number): TopicInfo {
  return {
    name: `${CHANNEL_PREFIX}${channel}`,
    partitions: [{ partition: 0, startOffset: 0, endOffset: 0, bytes: 0 }],
    messages: 0,
    bytes: 0,
    config: { type: 'pubsub', subscribers },
  };
}

export async function listChannels(client: RedisClient): Promise<TopicInfo[]> {
  const names = new Set<string>();
  for (const node of keyNodes(client)) {
    for (const c of (await node.call('PUBSUB', 'CHANNELS')) as string[]) if (names.size < MAX_CHANNELS) names.add(c);
  }
  if (names.size === 0) return [];
  const sorted = [...names].sort();
  const counts = new Map<string, number>();
  for (const node of keyNodes(client)) {
    const flat = (await node.call('PUBSUB', 'NUMSUB', ...sorted)) as Array<string | number>;
    for (let i = 0; i + 1 < flat.length; i += 2) counts.set(String(flat[i]), (counts.get(String(flat[i])) ?? 0) + Number(flat[i + 1]));
  }
  return sorted.map((c) => channelTopic(c, counts.get(c) ?? 0));
}

export async function channelInfo(client: RedisClient, channel: string): Promise<TopicInfo> {
  let n = 0;
  for (const node of keyNodes(client)) {
    const flat = (await node.call('PUBSUB', 'NUMSUB', channel)) as Array<string | number>;
    n += Number(flat[1] ?? 0);
  }
  return channelTopic(channel, n);
}

export async function publish(client: RedisClient, channel: string, message: Buffer): Promise<number> {
  return Number(await client.publish(channel, message));
}

/** Messages published on the channel (or pattern) from now on, on a connection of its own. */
export function tailChannel(client: RedisClient, topic: string, listener: (r: RecordView & { topic: string }) => void, onError: (e: unknown) => void): () => void {
  const channel = channelOf(topic);
  const sub = duplicate(client);
  let ordinal = 0;
  const deliver = (from: Buffer, message: Buffer) => {
    const value = encodeBytes(message);
    const name = from.toString('utf8');
    listener({
      topic,
      partition: 0,
      offset: ordinal++,
      timestamp: Date.now(),
      key: name,
      keyEncoding: 'utf8',
      value: value.text,
      valueEncoding: value.encoding,
      size: message.length,
      headers: { channel: name },
    });
  };
  sub.on('messageBuffer', (from: Buffer, message: Buffer) => deliver(from, message));
  sub.on('pmessageBuffer', (_pattern: Buffer, from: Buffer, message: Buffer) => deliver(from, message));
  sub.on('error', () => {});
  (isPattern(channel) ? sub.psubscribe(channel) : sub.subscribe(channel)).catch(onError);
  return () => {
    sub.disconnect();
  };
}
