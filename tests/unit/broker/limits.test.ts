import { describe, expect, it } from 'vitest';
import { BrokerError } from '../../../src-main/broker/index.js';
import { MAX_CALL_BYTES, MAX_MESSAGE_BYTES } from '../../../src-main/broker/limits.js';
import { createEmbeddedConnector } from '../../../src-main/connectors/embedded/embedded-connector.js';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { b, memEngine } from './helpers.js';

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<BrokerError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(BrokerError);
    return err as BrokerError;
  }
  throw new Error('expected the call to be refused');
}

describe('size limits', () => {
  it("refuses a body over RabbitMQ's default max_message_size (128 MiB), as RabbitMQ words it, storing nothing", async () => {
    expect(MAX_MESSAGE_BYTES).toBe(134_217_728);
    const e = memEngine();
    e.declareQueue('q');
    const err = await refusal(e.publish({ exchange: '', routingKey: 'q', body: Buffer.alloc(MAX_MESSAGE_BYTES + 1) }));
    expect(err).toMatchObject({ code: 'TOO_LARGE', field: 'body' });
    expect(err.message).toBe("body: message size 134217729 is larger than configured max size 134217728 (128 MiB, as RabbitMQ's max_message_size)");
    await e.idle();
    expect(e.getQueue('q').messages).toBe(0);
    e.close();
  });

  it('accepts a body of exactly the limit and refuses one byte more (publish, publish-many, topics, re-drive edits)', async () => {
    const e = memEngine({ maxBodyBytes: 1000 });
    e.declareQueue('q');
    await e.publish({ exchange: '', routingKey: 'q', body: Buffer.alloc(1000) });
    expect((await refusal(e.publish({ exchange: '', routingKey: 'q', body: Buffer.alloc(1001) }))).code).toBe('TOO_LARGE');
    expect((await refusal(e.publishMany({ exchange: '', routingKey: 'q', body: Buffer.alloc(1001), count: 2 }))).field).toBe('body');
    e.createTopic('t', { partitions: 1 });
    await e.produce('t', [{ key: 'k', value: Buffer.alloc(999) }]);
    const rec = await refusal(() => e.produce('t', [{ key: 'kk', value: Buffer.alloc(999) }]));
    expect(rec).toMatchObject({ code: 'TOO_LARGE', field: 'records[0]' });
    expect(rec.message).toMatch(/message size 1001 is larger than configured max size 1000/);
    const edit = await refusal(() => e.startRedrive({ source: 'q', messageIds: ['1'], edit: { body: Buffer.alloc(1001) } }));
    expect(edit).toMatchObject({ code: 'TOO_LARGE', field: 'edit.body' });
    await e.idle();
    expect(e.getQueue('q').messages).toBe(1);
    expect(e.listTopics()[0]!.messages).toBe(1);
    e.close();
  });

  it('bounds count × body size of one call at 256 MiB, naming count and the limit, before anything is stored', async () => {
    expect(MAX_CALL_BYTES).toBe(268_435_456);
    const e = memEngine();
    e.declareQueue('q');
    const mib = Buffer.alloc(1_048_576, 'a');
    const err = await refusal(e.publishMany({ exchange: '', routingKey: 'q', body: mib, count: 257 }));
    expect(err).toMatchObject({ code: 'TOO_LARGE', field: 'count' });
    expect(err.message).toBe('count: 257 copies of 1048576 bytes make 269484032 bytes; one call stores at most 268435456 bytes (256 MiB): send fewer per call');
    // The worst case of placeholders counts: {{uuid}} grows by 28 bytes per copy.
    const templated = await refusal(e.publishMany({ exchange: '', routingKey: 'q', body: Buffer.concat([b('{{uuid}}'), mib.subarray(8)]), count: 256 }));
    expect(templated.field).toBe('count');
    const records = await refusal(() => {
      e.createTopic('t', { partitions: 2 });
      return e.produce('t', Array.from({ length: 257 }, () => ({ value: mib })));
    });
    expect(records).toMatchObject({ code: 'TOO_LARGE', field: 'count' });
    expect(records.message).toMatch(/^count: 257 records of 1048576 bytes make 269484032 bytes; one call stores at most 268435456 bytes \(256 MiB\)/);
    await e.idle();
    expect(e.getQueue('q').messages).toBe(0);
    expect(e.listTopics()[0]!.messages).toBe(0);
    e.close();
  });

  it('accepts a call of exactly the total and refuses one copy more', async () => {
    const e = memEngine({ maxCallBytes: 10_000 });
    e.declareQueue('q');
    expect((await e.publishMany({ exchange: '', routingKey: 'q', body: Buffer.alloc(1000), count: 10 })).published).toBe(10);
    expect((await refusal(e.publishMany({ exchange: '', routingKey: 'q', body: Buffer.alloc(1000), count: 11 }))).field).toBe('count');
    await e.idle();
    expect(e.getQueue('q').messages).toBe(10);
    e.close();
  });

  it('the embedded connection refuses a million 1 KiB copies at once (1 GB) before making them', async () => {
    const c = createEmbeddedConnector({ dataDir: null, readOnly: false, logger: silentLogger });
    try {
      await c.declareQueue!({ queue: 'q', durable: true, exclusive: false, autoDelete: false, arguments: {} });
      const kib = 'x'.repeat(1024);
      await expect(c.publish!({ exchange: '', routingKey: 'q', body: kib, bodyEncoding: 'utf8', properties: {}, mandatory: false, count: 1_000_000 })).rejects.toMatchObject({
        code: 'TOO_LARGE',
        field: 'count',
        message: 'count: 1000000 copies of 1024 bytes make 1024000000 bytes; one call stores at most 268435456 bytes (256 MiB): send fewer per call',
      });
      await c.createTopic!({ topic: 't', partitions: 1 } as never);
      await expect(c.produce!({ topic: 't', key: null, value: kib, valueEncoding: 'utf8', headers: {}, count: 1_000_000 } as never)).rejects.toMatchObject({
        code: 'TOO_LARGE',
        field: 'count',
      });
      expect((await c.getQueue!('q')).messages).toBe(0);
      expect((await c.listTopics!())[0]!.messages).toBe(0);
    } finally {
      await c.close();
    }
  });
});
