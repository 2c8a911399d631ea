/**
 * A re-drive that neither filters, selects nor edits passes messages through
 * as bytes (passthrough.ts). On a real RabbitMQ its copies must carry exactly
 * what the decoding path gives them: every property and header of every
 * type, the re-drive record, CC dropped, a foreign user-id moved to
 * x-original-user-id, a previous x-redriven-count counted on; and messages
 * go back to the queue their x-death names, several hops included.
 */
import amqp, { type ChannelModel, type ConfirmChannel, type Message } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitConnector } from '../../../src-main/connectors/rabbitmq/index.js';
import { passThroughAvailable, rawCopy, RawProperties } from '../../../src-main/connectors/rabbitmq/passthrough.js';
import { eventually, prepareBroker, rejectAll, testDeps } from './broker.js';

const env = await prepareBroker();
const title = env.ok ? 'RabbitMQ: re-drive as bytes' : `RabbitMQ: re-drive as bytes (skipped: ${env.reason})`;

/** Headers of every field type amqplib reads, nested ones included. */
const HEADERS: Record<string, unknown> = {
  origin: 'test',
  flag: true,
  off: false,
  small: 7,
  negative: -3,
  short: 3_000,
  int: 100_000,
  long: 2 ** 40,
  float: 1.5,
  nothing: null,
  bytes: Buffer.from([0, 1, 2, 255]),
  when: { '!': 'timestamp', value: 1_700_000_000 },
  price: { '!': 'decimal', value: { places: 2, digits: 1234 } },
  list: ['a', 1, [true, { deep: 'yes' }]],
  table: { inner: { x: 1, y: 'two' }, list: [] },
  'üñï-çødé': 'välue',
  'x-redriven-count': 2,
  'x-redriven-from': 'elsewhere',
  CC: ['pt-cc'],
};

function normalise(m: Message): Record<string, unknown> {
  const p = { ...m.properties } as Record<string, unknown>;
  const h = { ...(p.headers as Record<string, unknown>) };
  // Times of the dead-lettering and of the re-drive differ between two runs.
  h['x-death'] = (h['x-death'] as Array<Record<string, unknown>>).map((d) => ({ ...d, time: typeof d.time }));
  h['x-redriven-at'] = (h['x-redriven-at'] as { '!'?: unknown })?.['!'] ?? typeof h['x-redriven-at'];
  p.headers = h;
  return { properties: p, body: m.content.toString('base64') };
}

describe('RabbitMQ: content headers the pass-through cannot read', () => {
  const plan = { source: 'dlq', username: 'guest', deadLetterSources: ['q'] };
  /** Property flags with only `headers`, then a table holding one entry of `tag` and `value`. */
  const withHeader = (tag: string, value: Buffer) => {
    const entry = Buffer.concat([Buffer.from([1]), Buffer.from('k'), Buffer.from(tag), value]);
    const size = Buffer.alloc(4);
    size.writeUInt32BE(entry.length);
    return new RawProperties(Buffer.concat([Buffer.from([0x20, 0x00]), size, entry]));
  };

  it('refuses an unknown field type or a table that ends early, naming the problem, without throwing anything else', () => {
    expect(() => rawCopy(withHeader('Z', Buffer.alloc(4)), plan, 0)).toThrow(/content header could not be read \(a header has the unknown type tag "Z"\)/);
    expect(() => rawCopy(withHeader('S', Buffer.from([0, 0, 0, 9, 1])), plan, 0)).toThrow(/content header could not be read \(a header value ends early\)/);
    expect(() => rawCopy(new RawProperties(Buffer.from([0x20, 0x00, 0, 0, 1])), plan, 0)).toThrow(/content header could not be read/);
    expect(() => rawCopy(new RawProperties(Buffer.from([0x80])), plan, 0)).toThrow(/content header could not be read/);
  });

  it('reads a header without any properties as an empty one', () => {
    const copy = rawCopy(new RawProperties(Buffer.from([0, 0])), plan, 1_700_000_000);
    expect(copy.originalQueue).toBeNull();
    expect(copy.properties.readUInt16BE(0)).toBe(0x2000);
  });
});

describe.skipIf(!env.ok)(title, { timeout: 120_000 }, () => {
  if (!env.ok) {
    it(`RabbitMQ is not available: ${env.reason}`, () => {});
    return;
  }
  const b = env;
  let raw: ChannelModel;
  let other: ChannelModel;
  let ch: ConfirmChannel;
  let rabbit: RabbitConnector;

  async function drain(queue: string): Promise<Message[]> {
    const c = await raw.createChannel();
    const out: Message[] = [];
    for (;;) {
      const m = await c.get(queue, { noAck: true });
      if (!m) break;
      out.push(m);
    }
    await c.close();
    return out;
  }

  /** Dead-letters the same varied messages: one from another user, one without headers, one empty. */
  async function fill(): Promise<void> {
    const theirs = await other.createConfirmChannel();
    theirs.sendToQueue('pt', Buffer.from('from another user'), { messageId: 'pt-user', userId: 'pt-other', persistent: true });
    await theirs.waitForConfirms();
    await theirs.close();
    ch.sendToQueue('pt', Buffer.from('{"all":"properties"}'), {
      messageId: 'pt-all',
      contentType: 'application/json',
      contentEncoding: 'identity',
      headers: HEADERS,
      deliveryMode: 2,
      priority: 3,
      correlationId: 'corr',
      replyTo: 'reply-here',
      expiration: '3600000',
      timestamp: 1_700_000_123,
      type: 'order.created',
      userId: b.user,
      appId: 'the-app',
    });
    ch.sendToQueue('pt', Buffer.from('no headers at all'), { messageId: 'pt-bare' });
    ch.sendToQueue('pt', Buffer.alloc(0), { messageId: 'pt-empty', headers: { only: 'one' }, appId: 'a' });
    ch.sendToQueue('pt', Buffer.alloc(300_000, 'x'), { messageId: 'pt-large', headers: { size: 'larger than a frame' } });
    await ch.waitForConfirms();
    await drain('pt-cc');
    await rejectAll(raw, 'pt', 5);
    await eventually(
      () => ch.checkQueue('pt.dlq'),
      (q) => q.messageCount === 5,
      30_000,
      50,
    );
  }

  beforeAll(async () => {
    raw = await b.connect();
    ch = await raw.createConfirmChannel();
    await b.createUser('pt-other', 'pt-secret', '', true);
    const url = new URL(b.amqpUrl);
    url.username = 'pt-other';
    url.password = 'pt-secret';
    other = await amqp.connect(url.toString());
    other.on('error', () => {});
    rabbit = new RabbitConnector('c-redrive-pt', b.config(), testDeps(), { sampleIntervalMs: 0 });
    await ch.assertExchange('pt.dlx', 'fanout', { durable: true });
    await ch.assertQueue('pt.dlq', { durable: true });
    await ch.bindQueue('pt.dlq', 'pt.dlx', '');
    await ch.assertQueue('pt', { durable: true, arguments: { 'x-dead-letter-exchange': 'pt.dlx', 'x-max-priority': 5 } });
    await ch.assertQueue('pt-cc', { durable: true });
  });

  afterAll(async () => {
    await rabbit?.close();
    await other?.close().catch(() => {});
    await raw?.close().catch(() => {});
    await b.cleanup();
  });

  it('is available with the amqplib installed (otherwise every re-drive decodes and re-encodes each message)', async () => {
    const read = await b.connect();
    const write = await b.connect();
    try {
      expect(passThroughAvailable(read, await write.createConfirmChannel())).toBe(true);
    } finally {
      await read.close();
      await write.close();
    }
  });

  it('gives copies the same properties and headers as the decoding path', async () => {
    await fill();
    const all = await rabbit.startRedrive({ source: 'pt.dlq', all: true });
    const bytes = await rabbit.waitForRedrive(all.id);
    expect(bytes, bytes?.error ?? '').toMatchObject({ state: 'completed', moved: 5, failed: 0 });
    const passed = (await drain('pt')).map(normalise);

    await fill();
    // A selection of every message takes the decoding path.
    const picked = await rabbit.startRedrive({ source: 'pt.dlq', messageIds: ['pt-user', 'pt-all', 'pt-bare', 'pt-empty', 'pt-large'] });
    const decoded = await rabbit.waitForRedrive(picked.id);
    expect(decoded, decoded?.error ?? '').toMatchObject({ state: 'completed', moved: 5, failed: 0 });
    const reference = (await drain('pt')).map(normalise);

    expect(passed).toEqual(reference);
    // Nothing was copied to the CC queue by either re-drive.
    expect(await drain('pt-cc')).toHaveLength(0);
    const byId = new Map(passed.map((m) => [(m.properties as { messageId: string }).messageId, m.properties as Record<string, unknown>]));
    const full = byId.get('pt-all')!;
    expect(full).toMatchObject({ contentType: 'application/json', priority: 3, correlationId: 'corr', timestamp: 1_700_000_123, userId: b.user, appId: 'the-app' });
    const h = full.headers as Record<string, unknown>;
    expect(h).toMatchObject({ origin: 'test', long: 2 ** 40, 'x-redriven-count': 3, 'x-redriven-from': 'pt.dlq', 'x-redriven-at': 'timestamp' });
    expect(h.CC).toBeUndefined();
    expect(h.table).toEqual({ inner: { x: 1, y: 'two' }, list: [] });
    const moved = byId.get('pt-user')!;
    expect(moved.userId).toBeUndefined();
    expect(moved.headers).toMatchObject({ 'x-original-user-id': 'pt-other', 'x-redriven-count': 1 });
    expect(byId.get('pt-bare')!.headers).toMatchObject({ 'x-redriven-count': 1, 'x-redriven-from': 'pt.dlq' });
  });

  it('sends a message that died in several queues back to the one that dead-letters into the source', async () => {
    // first → (dead-letters to) second → (dead-letters to) pt.dlq: the copy goes back to "second".
    await ch.assertQueue('pt-second', { durable: true, arguments: { 'x-dead-letter-exchange': 'pt.dlx' } });
    await ch.assertQueue('pt-first', { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'pt-second' } });
    for (let i = 0; i < 3; i++) ch.sendToQueue('pt-first', Buffer.from(`hop ${i}`), { messageId: `hop-${i}`, persistent: true });
    await ch.waitForConfirms();
    await rejectAll(raw, 'pt-first', 3);
    await eventually(
      () => ch.checkQueue('pt-second'),
      (q) => q.messageCount === 3,
      30_000,
      50,
    );
    await rejectAll(raw, 'pt-second', 3);
    await eventually(
      () => ch.checkQueue('pt.dlq'),
      (q) => q.messageCount === 3,
      30_000,
      50,
    );
    const { id } = await rabbit.startRedrive({ source: 'pt.dlq', all: true });
    const job = await rabbit.waitForRedrive(id);
    expect(job, job?.error ?? '').toMatchObject({ state: 'completed', moved: 3, failed: 0 });
    const back = await drain('pt-second');
    expect(back.map((m) => m.properties.messageId)).toEqual(['hop-0', 'hop-1', 'hop-2']);
    expect(back[0]!.properties.headers).toMatchObject({ 'x-first-death-queue': 'pt-first', 'x-redriven-count': 1 });
    expect(await drain('pt-first')).toHaveLength(0);
  });
});
