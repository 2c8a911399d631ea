/**
 * kcat (librdkafka) against the Kafka listener: metadata, producing with each
 * compression codec, and consuming back what was produced, unchanged.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWireBroker, type WireBroker } from './helpers.js';

const run = promisify(execFile);
const KCAT = '/usr/bin/kcat';

describe.skipIf(!existsSync(KCAT))('kcat against the Kafka listener', () => {
  let broker: WireBroker;
  beforeAll(async () => {
    broker = await startWireBroker();
  });
  afterAll(() => broker?.stop());

  const kcat = (args: string[], input?: string) =>
    new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      const child = execFile(KCAT, ['-b', broker.bootstrap, ...args], { timeout: 30_000 }, (error, stdout, stderr) => (error ? reject(Object.assign(error, { stderr })) : resolve({ stdout, stderr })));
      if (input !== undefined) child.stdin!.end(input);
    });

  it('lists the broker and topics with -L', async () => {
    broker.host.live().createTopic('listed', { partitions: 3 });
    const { stdout } = await kcat(['-L', '-J']);
    const meta = JSON.parse(stdout) as { brokers: Array<{ id: number; name: string }>; topics: Array<{ topic: string; partitions: unknown[] }> };
    expect(meta.brokers).toEqual([{ id: 0, name: `127.0.0.1:${broker.port}` }]);
    expect(meta.topics.find((t) => t.topic === 'listed')?.partitions).toHaveLength(3);
  });

  it.each(['none', 'gzip', 'snappy', 'lz4', 'zstd'])('produces with compression %s and consumes the records back', async (codec) => {
    const topic = `kcat-${codec}`;
    const lines = Array.from({ length: 50 }, (_, i) => `key-${i % 7}:value ${i} ${'x'.repeat(i)}`);
    await kcat(['-P', '-t', topic, '-K', ':', '-z', codec, '-X', 'linger.ms=5'], lines.join('\n') + '\n');
    const engine = broker.host.live();
    expect(engine.listTopics().find((t) => t.name === topic)?.messages).toBe(50);
    const { stdout } = await kcat(['-C', '-t', topic, '-o', 'beginning', '-e', '-f', '%k:%s\\n']);
    expect(stdout.trim().split('\n').sort()).toEqual([...lines].sort());
  });
});
