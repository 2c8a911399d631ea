/**
 * The embedded broker in a process of its own, for tests/bench/kafka-wire-big.ts
 * (bundled with esbuild, native modules left to node_modules), so that its
 * resident memory is the broker's alone.
 *
 *   fill <dataDir> <topic> <count> <valueBytes>   creates the topic (one partition)
 *       in the data folder and appends <count> records through the engine in large
 *       calls, then closes the broker; prints `FILLED <count> <ms>`.
 *   serve <dataDir>   opens the broker with the Kafka listener on a free loopback
 *       port, prints `PORT <n>`, and closes both on SIGTERM or SIGINT.
 */
import { BrokerHost } from '../../src-main/broker/host.js';
import type { ProduceRecord } from '../../src-main/broker/types.js';
import { silentLogger } from '../../src-main/ground/logger.js';
import { createKafkaListener } from '../../src-main/protocols/kafka/server.js';

/** Records per engine call while filling: large enough that each commit carries many. */
const FILL_CALL = 50_000;

async function fill(dataDir: string, topic: string, count: number, valueBytes: number): Promise<void> {
  const started = performance.now();
  const host = BrokerHost.open({ dataDir, logger: silentLogger });
  try {
    const engine = host.live();
    engine.createTopic(topic, { partitions: 1 });
    const value = Buffer.alloc(valueBytes, 'x');
    let done = 0;
    // Up to two calls in flight: one being committed while the next is prepared.
    const inFlight: Promise<unknown>[] = [];
    while (done < count) {
      const n = Math.min(FILL_CALL, count - done);
      const records: ProduceRecord[] = new Array(n);
      for (let i = 0; i < n; i++) records[i] = { value, partition: 0 };
      inFlight.push(engine.produce(topic, records));
      done += n;
      if (inFlight.length >= 2) await inFlight.shift();
    }
    await Promise.all(inFlight);
  } finally {
    host.close();
  }
  process.stdout.write(`FILLED ${count} ${Math.round(performance.now() - started)}\n`);
}

async function serve(dataDir: string): Promise<void> {
  const host = BrokerHost.open({ dataDir, logger: silentLogger });
  const listener = createKafkaListener(host, { host: '127.0.0.1', port: 0, dataDir }, silentLogger);
  const port = await listener.listen();
  const stop = async () => {
    await listener.close(1000);
    host.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  process.stdout.write(`PORT ${port}\n`);
}

async function main(): Promise<void> {
  const [mode, dataDir, ...rest] = process.argv.slice(2);
  if (!dataDir) throw new Error('usage: kafka-wire-child fill <dataDir> <topic> <count> <valueBytes> | serve <dataDir>');
  if (mode === 'fill') {
    const [topic, count, valueBytes] = rest;
    if (!topic || !Number.isInteger(Number(count)) || !Number.isInteger(Number(valueBytes))) throw new Error('usage: kafka-wire-child fill <dataDir> <topic> <count> <valueBytes>');
    await fill(dataDir, topic, Number(count), Number(valueBytes));
  } else if (mode === 'serve') {
    await serve(dataDir);
  } else {
    throw new Error(`unknown mode ${JSON.stringify(mode)}; use fill or serve`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
