/**
 * End-to-end latency, produce to consume, at a steady rate: one
 * @platformatic/kafka producer (acks=all; linger 0: a record goes out as soon as
 * one of five request slots is free) sends records of `recordBytes` at `rate` per second, and
 * a consumer of the same process, in a group from the end of a one-partition
 * topic, takes each record's latency as the time it was handed the record
 * minus the send time the record carries (performance.now(), same clock).
 * Records sent during the warm-up are not counted. Before the timed run, probe
 * records are sent until the consumer sees one, so the group's join is not
 * part of the figures.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Admin, Consumer, Producer, type Message } from '@platformatic/kafka';

export interface LatencyOptions {
  rate: number;
  seconds: number;
  warmupSeconds: number;
  recordBytes: number;
}

export interface LatencyFigures {
  p50: number;
  p99: number;
  max: number;
  /** Records counted (sent after the warm-up and received). */
  samples: number;
  /** Records sent after the warm-up that the consumer did not get within 30 s of the last send. */
  missing: number;
  /** The rate the producer kept, records/s over the whole run. */
  rate: number;
  /** Sends the broker refused or that failed. */
  failedSends: number;
}

const PROBE = 0;
const MEASURED = 1;
const WARMUP = 2;
/** The Java producer's max.in.flight.requests.per.connection default. */
const MAX_IN_FLIGHT = 5;

/** The nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function record(kind: number, seq: number, bytes: number): Buffer {
  const value = Buffer.alloc(bytes, 0x61);
  value.writeUInt8(kind, 0);
  value.writeUInt32BE(seq, 1);
  value.writeDoubleBE(performance.now(), 8);
  return value;
}

export async function measureLatency(bootstrap: string, topic: string, options: LatencyOptions): Promise<LatencyFigures> {
  const base = { bootstrapBrokers: [bootstrap], retries: 3 };
  const admin = new Admin({ ...base, clientId: 'bench-latency-admin' });
  await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
  const producer = new Producer({ ...base, clientId: 'bench-latency-producer', acks: -1, idempotent: false, autocreateTopics: false, maxInflights: MAX_IN_FLIGHT });
  const consumer = new Consumer({ ...base, clientId: 'bench-latency-consumer', groupId: `bench-latency-${topic}`, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
  const latencies: number[] = [];
  let probed = false;
  let received = 0;
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'latest', autocommit: false, minBytes: 1, maxWaitTime: 500 });
    const streamError = new Promise<never>((_, reject) => stream.on('error', reject));
    stream.on('data', (m: Message<Buffer, Buffer, Buffer, Buffer>) => {
      const now = performance.now();
      const kind = m.value.readUInt8(0);
      if (kind === PROBE) probed = true;
      else if (kind === MEASURED) {
        latencies.push(now - m.value.readDoubleBE(8));
        received++;
      }
    });
    try {
      const probeDeadline = Date.now() + 60_000;
      for (let i = 0; !probed; i++) {
        if (Date.now() > probeDeadline) throw new Error('the consumer got no record within 60 s of joining');
        await Promise.race([producer.send({ messages: [{ topic, partition: 0, value: record(PROBE, i, 16) }] }), streamError]);
        await Promise.race([sleep(100), streamError]);
      }

      const total = Math.round((options.warmupSeconds + options.seconds) * options.rate);
      const warmup = Math.round(options.warmupSeconds * options.rate);
      // As the Java producer with linger.ms=0 and five requests in flight: a record is sent as
      // soon as a request slot is free, and records that come due while all five are busy go
      // together in the next request.
      let failedSends = 0;
      let inFlight = 0;
      let queued: Buffer[] = [];
      let drained: (() => void) | null = null;
      const pump = () => {
        while (inFlight < MAX_IN_FLIGHT && queued.length > 0) {
          const values = queued;
          queued = [];
          inFlight++;
          producer
            .send({ messages: values.map((value) => ({ topic, partition: 0, value })) })
            .catch(() => (failedSends += values.length))
            .finally(() => {
              inFlight--;
              pump();
              if (inFlight === 0 && queued.length === 0) drained?.();
            });
        }
      };
      let sent = 0;
      const t0 = performance.now();
      while (sent < total) {
        const due = Math.min(total, Math.floor(((performance.now() - t0) * options.rate) / 1000));
        for (; sent < due; sent++) queued.push(record(sent < warmup ? WARMUP : MEASURED, sent, options.recordBytes));
        pump();
        await sleep(1);
      }
      if (inFlight > 0 || queued.length > 0) await new Promise<void>((resolve) => (drained = resolve));
      const rate = (total * 1000) / (performance.now() - t0);
      const measuredSent = total - warmup;
      const deadline = Date.now() + 30_000;
      while (received < measuredSent - failedSends && Date.now() < deadline) await Promise.race([sleep(20), streamError]);
      const sorted = [...latencies].sort((a, b) => a - b);
      await stream.close();
      return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN, samples: sorted.length, missing: measuredSent - received, rate, failedSends };
    } finally {
      if (!stream.closed) await Promise.resolve(stream.close()).catch(() => undefined);
    }
  } finally {
    await new Promise<void>((resolve) => consumer.close(true, () => resolve()));
    await producer.close().catch(() => undefined);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.close().catch(() => undefined);
  }
}
