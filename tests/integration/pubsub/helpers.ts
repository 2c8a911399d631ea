/**
 * What the Pub/Sub tests share: the client library pointed at the test emulator
 * (the generated clients for set-up, the high-level client as a real subscriber),
 * connection configurations, and subscribers that record what they receive.
 */
import { credentials } from '@grpc/grpc-js';
import { PubSub, v1, type Message } from '@google-cloud/pubsub';
import type { PubsubTestEmulator } from '../../pubsub/servers.js';

export const PROJECT = 'brokerdeck-test';

export function emulatorConfig(emulator: PubsubTestEmulator, extra: Record<string, unknown> = {}) {
  return { kind: 'pubsub', name: 'test pubsub', projectId: PROJECT, emulatorHost: emulator.host, allowDeliveryAttemptRisk: false, readOnly: false, ...extra } as const;
}

export function rawClients(emulator: PubsubTestEmulator) {
  const at = emulator.host.lastIndexOf(':');
  const options = { projectId: PROJECT, servicePath: emulator.host.slice(0, at), port: Number(emulator.host.slice(at + 1)), sslCreds: credentials.createInsecure(), universeDomain: 'googleapis.com' };
  return {
    publisher: new v1.PublisherClient(options),
    subscriber: new v1.SubscriberClient(options),
    pubsub: new PubSub({ projectId: PROJECT, apiEndpoint: emulator.host, emulatorMode: true, universeDomain: 'googleapis.com' }),
  };
}

export type RawClients = ReturnType<typeof rawClients>;

export const topicPath = (t: string) => `projects/${PROJECT}/topics/${t}`;
export const subPath = (s: string) => `projects/${PROJECT}/subscriptions/${s}`;

export interface Received {
  id: string;
  data: string;
  attributes: Record<string, string>;
  orderingKey: string | undefined;
  deliveryAttempt: number;
}

/**
 * A real subscriber (streaming pull) that records every delivery; `decide` says
 * whether to ack (the default) or nack each one.
 */
export function subscribe(raw: RawClients, subscription: string, decide: (m: Message, seen: number) => 'ack' | 'nack' = () => 'ack', maxMessages = 100) {
  const received: Received[] = [];
  const sub = raw.pubsub.subscription(subscription, { flowControl: { maxMessages, allowExcessMessages: false } });
  const errors: Error[] = [];
  sub.on('error', (e: Error) => errors.push(e));
  sub.on('message', (m: Message) => {
    received.push({ id: m.id, data: m.data.toString('utf8'), attributes: { ...m.attributes }, orderingKey: m.orderingKey || undefined, deliveryAttempt: m.deliveryAttempt });
    if (decide(m, received.length) === 'ack') m.ack();
    else m.nack();
  });
  return {
    received,
    errors,
    close: () => sub.close(),
  };
}

export async function createTopic(raw: RawClients, name: string): Promise<void> {
  await raw.publisher.createTopic({ name: topicPath(name) });
}

export async function publishRaw(raw: RawClients, topic: string, messages: Array<{ data: string; attributes?: Record<string, string>; orderingKey?: string }>): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < messages.length; i += 1000) {
    const [r] = await raw.publisher.publish(
      {
        topic: topicPath(topic),
        messages: messages.slice(i, i + 1000).map((m) => ({ data: Buffer.from(m.data), attributes: m.attributes ?? {}, ...(m.orderingKey ? { orderingKey: m.orderingKey } : {}) })),
      },
      // Each request on its own: the generated client's bundling merges concurrent ones.
      { isBundling: false },
    );
    out.push(...(r.messageIds ?? []));
  }
  return out;
}
