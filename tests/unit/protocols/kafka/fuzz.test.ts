/**
 * A request fuzzer against a real Kafka listener: requests of every served API
 * and version, generated from Kafka's schemas, sent whole or mutated (bytes
 * flipped, cut short, garbage appended, a wrong frame size). The process must
 * not crash, no request may fail inside the broker (an error-level log), and
 * a connection opened before the fuzzing is still answered after it.
 *
 * `npm test` runs a bounded slice; `npm run fuzz:kafka` runs 1,000,000 cases
 * (KAFKA_FUZZ_CASES sets another count).
 */
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writer } from '../../../../src-main/protocols/kafka/codec/primitives.js';
import { API_SCHEMAS } from '../../../../src-main/protocols/kafka/generated/index.js';
import { adminApis } from '../../../../src-main/protocols/kafka/apis/admin.js';
import { clusterApis } from '../../../../src-main/protocols/kafka/apis/cluster.js';
import { configApis } from '../../../../src-main/protocols/kafka/apis/configs.js';
import { fetchApis } from '../../../../src-main/protocols/kafka/apis/fetch.js';
import { groupApis } from '../../../../src-main/protocols/kafka/apis/groups.js';
import { produceApis } from '../../../../src-main/protocols/kafka/apis/produce.js';
import { saslApis } from '../../../../src-main/protocols/kafka/apis/sasl.js';
import { transactionApis } from '../../../../src-main/protocols/kafka/apis/transactions.js';
import { startWireBroker, type WireBroker } from '../../../integration/kafka-wire/helpers.js';
import { messageArbitrary } from './schema-arbitrary.js';

const CASES = Number(process.env.KAFKA_FUZZ_CASES ?? 2000);
const served = { ...clusterApis, ...configApis, ...adminApis, ...produceApis, ...fetchApis, ...groupApis, ...saslApis, ...transactionApis };

let broker: WireBroker;
beforeAll(async () => {
  broker = await startWireBroker();
});
afterAll(() => broker?.stop());

function request(apiKey: number, version: number, correlationId: number, body: Record<string, unknown>): Buffer {
  const schema = API_SCHEMAS.get(apiKey)!;
  const w = new Writer(128);
  w.int32(0).int16(apiKey).int16(version).int32(correlationId).string('fuzzer', false);
  if (schema.firstFlexibleVersion >= 0 && version >= schema.firstFlexibleVersion) w.uvarint(0);
  schema.writeRequest(w, version, body);
  const out = Buffer.from(w.result());
  out.writeInt32BE(out.length - 4, 0);
  return out;
}

type Mutation = { kind: 'none' } | { kind: 'flip'; at: number; byte: number } | { kind: 'cut'; at: number } | { kind: 'append'; bytes: Uint8Array } | { kind: 'size'; size: number };

function mutate(frame: Buffer, m: Mutation): Buffer {
  switch (m.kind) {
    case 'none':
      return frame;
    case 'flip': {
      const b = Buffer.from(frame);
      const at = 4 + (m.at % Math.max(1, b.length - 4));
      if (at < b.length) b[at] = m.byte;
      return b;
    }
    case 'cut': {
      const n = 4 + (m.at % Math.max(1, frame.length - 4));
      const b = Buffer.from(frame.subarray(0, n));
      b.writeInt32BE(n - 4, 0);
      return b;
    }
    case 'append': {
      const b = Buffer.concat([frame, Buffer.from(m.bytes)]);
      b.writeInt32BE(b.length - 4, 0);
      return b;
    }
    case 'size': {
      const b = Buffer.from(frame);
      b.writeInt32BE(m.size, 0);
      return b;
    }
  }
}

// JoinGroup and SyncGroup wait for other members by design (the coordinator's own tests cover them).
const apiKeys = Object.keys(served).map(Number).filter((k) => k !== 11 && k !== 14);
const arbitraries = new Map<string, fc.Arbitrary<Record<string, unknown>>>();
function bodyArb(apiKey: number, version: number) {
  const key = `${apiKey}:${version}`;
  let a = arbitraries.get(key);
  if (!a) {
    a = messageArbitrary(`${API_SCHEMAS.get(apiKey)!.name}Request.json`, version).arbitrary;
    arbitraries.set(key, a);
  }
  return a;
}

const caseArb = fc
  .record({ apiKey: fc.constantFrom(...apiKeys), v: fc.nat() })
  .chain(({ apiKey, v }) => {
    const s = served[apiKey]!;
    const version = s.min + (v % (s.max - s.min + 1));
    return fc.record({
      apiKey: fc.constant(apiKey),
      version: fc.constant(version),
      // A fetch long-polls for max.wait.ms by design: kept short so the cases keep moving.
      body: bodyArb(apiKey, version).map((b) => (apiKey === 1 ? { ...b, maxWaitMs: Math.abs(Number(b.maxWaitMs ?? 0)) % 50 } : b)),
      // A mutated fetch could ask to wait for weeks: fetches are sent whole.
      mutation: apiKey === 1 ? fc.constant<Mutation>({ kind: 'none' }) : fc.oneof(
        { weight: 3, arbitrary: fc.constant<Mutation>({ kind: 'none' }) },
        { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }) },
        { weight: 2, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('size' as const), size: fc.integer() }) },
      ),
    });
  });

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/**
 * Resolves once the connection answered the request with this correlation id
 * (every request before it was handled, answers come in order) or closed.
 */
function settled(socket: net.Socket, correlationId: number): Promise<void> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const done = () => {
      socket.off('data', onData);
      socket.off('close', done);
      resolve();
    };
    const onData = (c: Buffer) => {
      got = Buffer.concat([got, c]);
      while (got.length >= 8 && got.length >= 4 + got.readInt32BE(0)) {
        if (got.readInt32BE(4) === correlationId) return done();
        got = got.subarray(4 + got.readInt32BE(0));
      }
    };
    socket.on('data', onData);
    socket.once('close', done);
    if (socket.destroyed) done();
  });
}

/** Sends ApiVersions v0 and resolves with the response's correlation id. */
function apiVersions(socket: net.Socket, correlationId: number): Promise<number> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 8 && got.length >= 4 + got.readInt32BE(0)) {
        socket.off('data', onData);
        resolve(got.readInt32BE(4));
      }
    };
    socket.on('data', onData);
    socket.write(request(18, 0, correlationId, {}));
  });
}

// The requests are generated from Kafka's schemas (the copy in generated/message-schemas.ts).
describe('Kafka listener under fuzzed requests', () => {
  it(`survives ${CASES} generated and mutated requests, and other connections are unaffected`, async () => {
    const control = await connect(broker.port);
    expect(await apiVersions(control, 1)).toBe(1);
    const cases = fc.sample(caseArb, { numRuns: CASES, seed: Number(process.env.KAFKA_FUZZ_SEED ?? 20261127) });
    let socket = await connect(broker.port);
    socket.on('error', () => {});
    let sent = 0;
    let handled = 0;
    let closed = 0;
    let id = 0;
    for (const c of cases) {
      if (socket.destroyed || sent >= 200) {
        if (!socket.destroyed) {
          const marker = ++id;
          const wait = settled(socket, marker);
          socket.write(request(18, 0, marker, {}));
          await wait;
        }
        socket.destroy();
        socket = await connect(broker.port);
        socket.on('error', () => {});
        sent = 0;
      }
      const frame = mutate(request(c.apiKey, c.version, ++id, c.body), c.mutation as Mutation);
      await new Promise<void>((r) => socket.write(frame, () => r()));
      sent++;
      handled++;
      // A mutated frame may close the connection: wait to know before sending more on it.
      if ((c.mutation as Mutation).kind === 'size') {
        // A size larger than what follows waits for more bytes, as Kafka's does: this client gives up on it.
        socket.destroy();
        closed++;
      } else if ((c.mutation as Mutation).kind !== 'none') {
        const marker = ++id;
        const wait = settled(socket, marker);
        socket.write(request(18, 0, marker, {}));
        await wait;
        if (socket.destroyed) closed++;
      }
    }
    socket.destroy();
    expect(handled).toBe(CASES);
    // Some mutations are refused by closing the connection, not all: the rest were read and answered.
    expect(closed).toBeGreaterThan(0);
    expect(closed).toBeLessThan(CASES);
    expect(await apiVersions(control, 2)).toBe(2);
    control.destroy();
    const errors = broker.logs.filter((l) => l.level === 'error');
    expect(errors, JSON.stringify(errors.slice(0, 3), null, 2)).toEqual([]);
  }, 600_000);
});
