/**
 * SIGKILL while a Kafka client produces with acks=all, repeated: every record
 * the broker acknowledged is there after the restart, at the offset it was
 * acknowledged at. The broker runs in a child process (bundled with esbuild,
 * native modules left to node_modules) that is killed mid-send each round.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerHost } from '../../../src-main/broker/host.js';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { NATIVE_PACKAGES } from '../fixtures/child-process.js';

const root = resolve(__dirname, '../../..');
const ROUNDS = 3;
let work: string;
let child: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'bd-kafka-kill-'));
  child = join(work, 'wire-broker-child.cjs');
  await build({
    entryPoints: [join(__dirname, 'fixtures/wire-broker-child.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: child,
    external: NATIVE_PACKAGES,
    logLevel: 'error',
  });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function startChild(dataDir: string): Promise<{ proc: ChildProcess; port: number }> {
  return new Promise((resolvePort, reject) => {
    const proc = spawn(process.execPath, [child, dataDir], { env: { ...process.env, NODE_PATH: join(root, 'node_modules') }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolvePort({ proc, port: Number(m[1]) });
    });
    proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    proc.on('exit', (code) => reject(new Error(`broker child exited with ${code}: ${err}`)));
  });
}

describe('Kafka listener durability', () => {
  it('keeps every acks=all record through repeated SIGKILL, at its acknowledged offset', async () => {
    const dataDir = join(work, 'data');
    const acked = new Map<number, string>();
    for (let round = 0; round < ROUNDS; round++) {
      const { proc, port } = await startChild(dataDir);
      const kafka = new Kafka({ clientId: 'kill-test', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 0 } });
      const producer = kafka.producer({ allowAutoTopicCreation: true, retry: { retries: 0 } });
      await producer.connect();
      const gone = new Promise<void>((r) => proc.once('exit', () => r()));
      for (let i = 0; ; i++) {
        const values = Array.from({ length: 10 }, (_, j) => `r${round}-b${i}-${j}`);
        const sending = producer.send({ topic: 'durable', acks: -1, messages: values.map((value) => ({ value, partition: 0 })) });
        if (i === 40) {
          // Killed while this send is on its way: it may or may not be stored, but it is not acknowledged.
          proc.kill('SIGKILL');
          await sending.catch(() => undefined);
          break;
        }
        const [res] = await sending;
        values.forEach((v, j) => acked.set(Number(res!.baseOffset) + j, v));
      }
      await gone;
      await producer.disconnect().catch(() => undefined);
    }
    expect(acked.size).toBe(ROUNDS * 40 * 10);
    const host = BrokerHost.open({ dataDir, logger: silentLogger });
    try {
      const engine = host.live();
      const end = engine.listTopics().find((t) => t.name === 'durable')!.partitions[0]!.endOffset;
      const records = engine.fetch('durable', 0, { offset: 0, limit: Math.max(1, end) }).records;
      const stored = new Map(records.map((r) => [r.offset, r.value!.toString()]));
      for (const [offset, value] of acked) expect(stored.get(offset), `offset ${offset}`).toBe(value);
    } finally {
      host.close();
    }
  }, 180_000);
});
