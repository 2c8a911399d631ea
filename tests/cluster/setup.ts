/**
 * Global setup of the cluster tests (tests/cluster/vitest.config.ts): each
 * project starts its cluster once for the run, in vitest's main process,
 * hands the test files its addresses with `provide`, and stops it at the end
 * of the run, whether the tests passed or not (and, should the run itself
 * die, when the process exits).
 *
 * A cluster that cannot be started here (no rabbitmq-server, no Java or
 * Maven) is handed over as `{ ok: false, reason }`, and the tests skip with
 * that reason; CLUSTER_REQUIRED=1 makes it a failure instead.
 *
 * With RABBITMQ_CLUSTER_STATE_FILE or KAFKA_CLUSTER_STATE_FILE set, the
 * cluster recorded there is used (started if it is not running) and left
 * running afterwards: handy while writing tests.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { kafkaClusterScript, rabbitmqClusterScript, runScript, stopSync, whyUnavailable, type KafkaClusterInfo, type RabbitClusterInfo } from './control.js';

interface Started {
  ok: boolean;
  reason: string;
  lines: Record<string, string>;
  stateFile: string;
  seconds: number;
}

async function startCluster(name: string, script: string, envStateFile: string | undefined, unavailableMarker: string): Promise<Started & { stop(): Promise<void> }> {
  const owned = !envStateFile;
  const stateFile = envStateFile ?? join(tmpdir(), `brokerdeck-${name}`, `test-${process.pid}-${Date.now()}.json`);
  const started = Date.now();
  const r = await runScript(script, ['start', '--state', stateFile], 600_000);
  const seconds = (Date.now() - started) / 1000;
  const exitHook = () => stopSync(script, stateFile);
  if (owned) process.once('exit', exitHook);
  let stopped = !owned;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const t = Date.now();
    const r = await runScript(script, ['stop', '--state', stateFile], 120_000);
    process.removeListener('exit', exitHook);
    console.log(`[cluster] ${name} stopped in ${((Date.now() - t) / 1000).toFixed(1)} s${r.code === 0 ? '' : `: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`}`);
  };
  if (r.code !== 0) {
    const reason = `no ${name}: ${whyUnavailable(r, unavailableMarker)}`;
    console.warn(`[cluster] ${reason}`);
    await stop();
    if (process.env.CLUSTER_REQUIRED === '1') throw new Error(reason);
    return { ok: false, reason, lines: {}, stateFile, seconds, stop };
  }
  console.log(`[cluster] ${name} started in ${seconds.toFixed(1)} s`);
  return { ok: true, reason: '', lines: r.lines, stateFile, seconds, stop };
}

export async function rabbitmq(project: TestProject): Promise<() => Promise<void>> {
  const c = await startCluster('rabbitmq-cluster', rabbitmqClusterScript, process.env.RABBITMQ_CLUSTER_STATE_FILE, 'RABBITMQ_UNAVAILABLE');
  const split = (v: string | undefined) => (v ? v.split(',') : []);
  const info: RabbitClusterInfo = c.ok
    ? { ok: true, stateFile: c.stateFile, startSeconds: c.seconds, nodes: split(c.lines.RABBITMQ_CLUSTER_NODES), urls: split(c.lines.RABBITMQ_CLUSTER_URLS), managementUrls: split(c.lines.RABBITMQ_CLUSTER_MANAGEMENT_URLS) }
    : { ok: false, reason: c.reason };
  project.provide('rabbitmqCluster', info);
  return c.stop;
}

export async function kafka(project: TestProject): Promise<() => Promise<void>> {
  const c = await startCluster('kafka-cluster', kafkaClusterScript, process.env.KAFKA_CLUSTER_STATE_FILE, 'KAFKA_UNAVAILABLE');
  const info: KafkaClusterInfo = c.ok ? { ok: true, stateFile: c.stateFile, startSeconds: c.seconds, brokers: c.lines.KAFKA_CLUSTER_BROKERS!.split(',') } : { ok: false, reason: c.reason };
  project.provide('kafkaCluster', info);
  return c.stop;
}
