/**
 * The Kafka broker of the integration tests. `useKafkaBroker()` registers
 * hooks: with KAFKA_BROKERS set it uses that cluster as is; otherwise
 * `beforeAll` starts a fresh single-node broker with tests/kafka/kafka.mjs
 * (its own state file, so it never touches a broker started by hand) and
 * `afterAll` stops it and removes its data.
 *
 * When no broker can be had (no Java, no Maven, no network to Maven Central)
 * `require(ctx)` skips the test with the reason, so nothing passes without a
 * broker; KAFKA_REQUIRED=1 turns that into a failure.
 *
 * An external cluster can offer its SASL and TLS listeners too:
 * KAFKA_SASL_BROKERS, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (SCRAM-SHA-256
 * and -512 and PLAIN are tried as the test says), KAFKA_SSL_BROKERS and
 * KAFKA_SSL_CA (a PEM file).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { kafkaScript as script, parseLines, runKafkaScript as run, whyUnavailable } from './control.js';

export interface KafkaTestBroker {
  /** PLAINTEXT bootstrap servers. */
  brokers: string[];
  sasl: { brokers: string[]; username: string; password: string } | null;
  ssl: { brokers: string[]; ca: string } | null;
  /** Started here: it can be halted and resumed (same ports, same data). */
  owned: boolean;
  halt(): Promise<void>;
  resume(): Promise<void>;
  /** The broker's classpath (kafka-clients and tools included), when started here. */
  classpath(): string | null;
}

export interface KafkaBrokerHandle {
  /** The broker, or skips the calling test with the reason there is none. */
  require(ctx: { skip: (note?: string) => never }): KafkaTestBroker;
  readonly broker: KafkaTestBroker | null;
  readonly reason: string | null;
}

function external(): KafkaTestBroker {
  const env = process.env;
  const list = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []);
  const unsupported = async () => {
    throw new Error('KAFKA_BROKERS points at an external cluster: the tests cannot stop it');
  };
  return {
    brokers: list(env.KAFKA_BROKERS),
    sasl: env.KAFKA_SASL_BROKERS && env.KAFKA_SASL_USERNAME ? { brokers: list(env.KAFKA_SASL_BROKERS), username: env.KAFKA_SASL_USERNAME, password: env.KAFKA_SASL_PASSWORD ?? '' } : null,
    ssl: env.KAFKA_SSL_BROKERS && env.KAFKA_SSL_CA ? { brokers: list(env.KAFKA_SSL_BROKERS), ca: readFileSync(env.KAFKA_SSL_CA, 'utf8') } : null,
    owned: false,
    halt: unsupported,
    resume: unsupported,
    classpath: () => null,
  };
}

export function useKafkaBroker(): KafkaBrokerHandle {
  const state: { broker: KafkaTestBroker | null; reason: string | null } = { broker: null, reason: null };
  const stateFile = join(tmpdir(), 'brokerdeck-kafka', `test-${process.pid}-${Date.now()}.json`);
  let started = false;
  const stopSync = () => {
    if (started) spawnSync(process.execPath, [script, 'stop', '--state', stateFile], { stdio: 'ignore', timeout: 30_000 });
    started = false;
  };

  beforeAll(async () => {
    if (process.env.KAFKA_BROKERS) {
      state.broker = external();
      return;
    }
    const r = await run(['start', '--state', stateFile], 240_000);
    const lines = parseLines(r.stdout);
    if (r.code !== 0 || !lines.KAFKA_BROKERS) {
      const why = whyUnavailable(r);
      state.reason = `no Kafka broker: ${why}`;
      // Said once in the run's output too: the reporter shows skipped tests without their note.
      console.warn(`[kafka] ${state.reason}`);
      await run(['stop', '--state', stateFile], 30_000);
      if (process.env.KAFKA_REQUIRED === '1') throw new Error(state.reason);
      return;
    }
    started = true;
    // A test run that dies must not leave a JVM behind.
    process.once('exit', stopSync);
    let cp: string | null = null;
    state.broker = {
      brokers: [lines.KAFKA_BROKERS],
      sasl: lines.KAFKA_SASL_BROKERS ? { brokers: [lines.KAFKA_SASL_BROKERS], username: lines.KAFKA_SASL_USERNAME!, password: lines.KAFKA_SASL_PASSWORD! } : null,
      ssl: lines.KAFKA_SSL_BROKERS && lines.KAFKA_SSL_CA ? { brokers: [lines.KAFKA_SSL_BROKERS], ca: readFileSync(lines.KAFKA_SSL_CA, 'utf8') } : null,
      owned: true,
      async halt() {
        const h = await run(['halt', '--state', stateFile], 60_000);
        if (h.code !== 0) throw new Error(`halting the broker failed: ${h.stderr}`);
      },
      async resume() {
        const h = await run(['resume', '--state', stateFile], 120_000);
        if (h.code !== 0) throw new Error(`resuming the broker failed: ${h.stderr}`);
      },
      classpath() {
        if (cp === null) {
          const c = spawnSync(process.execPath, [script, 'classpath'], { encoding: 'utf8', timeout: 600_000 });
          cp = c.status === 0 ? c.stdout.trim() : '';
        }
        return cp || null;
      },
    };
  }, 300_000);

  afterAll(async () => {
    if (started) {
      await run(['stop', '--state', stateFile], 60_000);
      started = false;
      process.removeListener('exit', stopSync);
    }
  }, 90_000);

  return {
    require(ctx) {
      if (!state.broker) ctx.skip(state.reason ?? 'no Kafka broker');
      return state.broker!;
    },
    get broker() {
      return state.broker;
    },
    get reason() {
      return state.reason;
    },
  };
}
