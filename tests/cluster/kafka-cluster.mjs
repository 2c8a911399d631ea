#!/usr/bin/env node
/**
 * A real three-broker Apache Kafka cluster (KRaft, each JVM broker and
 * controller, three voters) on this machine, from the same Maven artifacts
 * as the single test broker (tests/kafka/pom.xml), for the cluster tests.
 *
 *   node tests/cluster/kafka-cluster.mjs start         format three fresh log directories with one cluster id,
 *                                                     start the brokers, wait until each answers and sees all
 *                                                     three; prints NAME=value lines, KAFKA_CLUSTER_BROKERS last
 *   node tests/cluster/kafka-cluster.mjs stop          stop every broker and remove the data
 *   node tests/cluster/kafka-cluster.mjs halt <n>      stop broker n (1-3) with a controlled shutdown, keeping its
 *                                                     data and ports (--kill: SIGKILL, as a crash)
 *   node tests/cluster/kafka-cluster.mjs resume <n>    start broker n again; returns once it answers and sees the cluster
 *   node tests/cluster/kafka-cluster.mjs status        print the state (exit 1 when no broker runs)
 *
 * Topics are created with three replicas and need two in sync
 * (default.replication.factor=3, min.insync.replicas=2), the internal topics
 * too, so the cluster keeps accepting acks=all writes with one broker down.
 * Every listener is on 127.0.0.1 on a free port; `--state <file>` (or
 * KAFKA_CLUSTER_STATE_FILE) names the state file, default in os.tmpdir(),
 * and `stop` ends only the processes recorded there that still run from
 * this cluster's folder.
 *
 * Exit codes: 0 done; 3 a prerequisite is missing (java, mvn, the jars), with
 * a KAFKA_UNAVAILABLE=<reason> line; 1 anything else.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brokersSeen, clusterId } from '../kafka/wire.mjs';
import { alive, freePort, has, killIfOurs, logger, ours, readState, runMain, saveState as save, sleep, tailFiles, terminate, Unavailable, waitExit } from '../servers/kit.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const singleBroker = join(here, '..', 'kafka', 'kafka.mjs');
const workDir = join(os.tmpdir(), 'brokerdeck-kafka-cluster');
const READY_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 60_000;
const HEAP = process.env.KAFKA_HEAP_OPTS ?? '-Xms128m -Xmx384m';
const log = logger('kafka-cluster');

function parseArgs(argv) {
  const args = { command: argv[0] ?? 'start', rest: [], state: process.env.KAFKA_CLUSTER_STATE_FILE ?? join(workDir, 'cluster.json'), kill: false };
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '--state') args.state = argv[++i];
    else if (argv[i] === '--kill') args.kill = true;
    else args.rest.push(argv[i]);
  }
  return args;
}

/** The broker's classpath, resolved (and cached) by the single-broker script. */
function classpath() {
  const r = spawnSync(process.execPath, [singleBroker, 'classpath'], { encoding: 'utf8', timeout: 15 * 60_000 });
  const unavailable = /^KAFKA_UNAVAILABLE=(.*)$/m.exec(r.stdout ?? '');
  if (unavailable) throw new Unavailable(unavailable[1]);
  if (r.status !== 0 || !r.stdout.trim()) throw new Error(`resolving the Kafka classpath failed: ${(r.stderr || r.error?.message || '').trim().slice(-500)}`);
  return r.stdout.trim().split('\n').pop();
}

function saveState(s) {
  save(s.stateFile, s);
}

function serverProperties(s, b) {
  return [
    'process.roles=broker,controller',
    `node.id=${b.id}`,
    `controller.quorum.voters=${s.brokers.map((x) => `${x.id}@127.0.0.1:${x.controllerPort}`).join(',')}`,
    `listeners=PLAINTEXT://127.0.0.1:${b.port},CONTROLLER://127.0.0.1:${b.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${b.port}`,
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    `log.dirs=${join(b.dir, 'logs')}`,
    // Three replicas, two in sync: one broker may be down and acks=all writes still succeed.
    'default.replication.factor=3',
    'min.insync.replicas=2',
    'offsets.topic.replication.factor=3',
    'offsets.topic.num.partitions=5',
    'transaction.state.log.replication.factor=3',
    'transaction.state.log.min.isr=2',
    'transaction.state.log.num.partitions=5',
    'share.coordinator.state.topic.replication.factor=3',
    'share.coordinator.state.topic.min.isr=2',
    'unclean.leader.election.enable=false',
    'group.initial.rebalance.delay.ms=0',
    'num.partitions=3',
    'auto.create.topics.enable=false',
    'delete.topic.enable=true',
    // A 2-core machine with three JVMs: few threads each.
    'num.network.threads=2',
    'num.io.threads=2',
    'num.replica.fetchers=1',
    'background.threads=2',
    'num.recovery.threads.per.data.dir=1',
    'log.cleaner.threads=1',
    '',
  ].join('\n');
}

function log4jProperties(dir) {
  return [
    'status = warn',
    'appender.file.type = File',
    'appender.file.name = FILE',
    `appender.file.fileName = ${join(dir, 'server.log')}`,
    'appender.file.layout.type = PatternLayout',
    'appender.file.layout.pattern = [%d] %p %m (%c)%n',
    'rootLogger.level = INFO',
    'rootLogger.appenderRef.file.ref = FILE',
    'logger.state.name = state.change.logger',
    'logger.state.level = WARN',
    '',
  ].join('\n');
}

function javaArgs(b, cp, mainClass, rest) {
  return [...HEAP.split(/\s+/).filter(Boolean), '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${join(b.dir, 'log4j2.properties')}`, '-cp', cp, mainClass, ...rest];
}

function launch(b, cp) {
  const out = openSync(join(b.dir, 'stdout.log'), 'a');
  const child = spawn('java', javaArgs(b, cp, 'kafka.Kafka', [join(b.dir, 'server.properties')]), { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  closeSync(out);
  b.pid = child.pid;
}

/** The broker answers and lists every broker of the cluster. */
async function waitReady(s, b) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!alive(b.pid)) throw new Error(`broker ${b.id} exited while starting; its log:\n${tailFiles(b.dir, ['stdout.log', 'server.log'], 15)}`);
    if ((await brokersSeen(b.port)) >= s.brokers.length) return;
    await sleep(250);
  }
  throw new Error(`broker ${b.id} did not see all ${s.brokers.length} brokers within ${READY_TIMEOUT_MS / 1000} s; its log:\n${tailFiles(b.dir, ['stdout.log', 'server.log'], 15)}`);
}

function printState(s) {
  console.log(`KAFKA_CLUSTER_STATE_FILE=${s.stateFile}`);
  console.log(`KAFKA_CLUSTER_DIR=${s.dir}`);
  console.log(`KAFKA_CLUSTER_ID=${s.clusterId}`);
  console.log(`KAFKA_CLUSTER_PIDS=${s.brokers.map((b) => (alive(b.pid) ? b.pid : 0)).join(',')}`);
  console.log(`KAFKA_CLUSTER_BROKERS=${s.brokers.map((b) => `127.0.0.1:${b.port}`).join(',')}`);
}

async function start(args) {
  const existing = readState(args.state);
  if (existing && existing.brokers.every((b) => ours(b.pid, existing.dir)) && (await Promise.all(existing.brokers.map((b) => brokersSeen(b.port)))).every((n) => n >= existing.brokers.length)) {
    log(`already running (${existing.dir})`);
    printState(existing);
    return;
  }
  if (existing) await cleanup(existing);
  if (!has('java')) throw new Unavailable('java is not installed: the brokers cannot run');
  const started = Date.now();
  const cp = classpath();
  mkdirSync(workDir, { recursive: true });
  const dir = join(workDir, `cluster-${randomBytes(4).toString('hex')}`);
  const s = { stateFile: args.state, dir, clusterId: clusterId(), brokers: [] };
  for (let id = 1; id <= 3; id++) {
    const b = { id, dir: join(dir, `broker${id}`), port: await freePort(), controllerPort: await freePort(), pid: 0 };
    mkdirSync(b.dir, { recursive: true });
    s.brokers.push(b);
  }
  saveState(s);
  try {
    for (const b of s.brokers) {
      writeFileSync(join(b.dir, 'server.properties'), serverProperties(s, b));
      writeFileSync(join(b.dir, 'log4j2.properties'), log4jProperties(b.dir));
    }
    log('formatting three log directories…');
    // Formatting starts a JVM each: side by side.
    await Promise.all(
      s.brokers.map(
        (b) =>
          new Promise((resolve, reject) => {
            const child = spawn('java', javaArgs(b, cp, 'kafka.tools.StorageTool', ['format', '-t', s.clusterId, '-c', join(b.dir, 'server.properties')]), { stdio: ['ignore', 'pipe', 'pipe'] });
            let out = '';
            child.stdout.on('data', (d) => (out += d));
            child.stderr.on('data', (d) => (out += d));
            child.on('error', reject);
            child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`formatting broker ${b.id}'s log directory failed: ${out.trim().split('\n').slice(-8).join(' | ')}`))));
          }),
      ),
    );
    log(`starting brokers on 127.0.0.1:${s.brokers.map((b) => b.port).join(', ')}…`);
    for (const b of s.brokers) launch(b, cp);
    saveState(s);
    for (const b of s.brokers) await waitReady(s, b);
  } catch (error) {
    await cleanup(s);
    throw error;
  }
  log(`cluster of 3 ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${s.dir})`);
  printState(s);
}

function broker(s, which) {
  const b = s.brokers.find((x) => x.id === Number(which));
  if (!b) throw new Error(`no broker "${which}" in this cluster: use 1-${s.brokers.length}`);
  return b;
}

/** SIGTERM runs Kafka's controlled shutdown (leadership moves first); SIGKILL is a crash. */
async function stopBroker(s, b, kill) {
  if (!ours(b.pid, s.dir)) return;
  await terminate(b.pid, { timeoutMs: STOP_TIMEOUT_MS, kill, log, what: `broker ${b.id}` });
}

async function cleanup(s) {
  for (const b of s.brokers) killIfOurs(b.pid, s.dir);
  await Promise.all(s.brokers.map((b) => waitExit(b.pid, 10_000)));
  if (s.dir && s.dir.startsWith(workDir)) rmSync(s.dir, { recursive: true, force: true });
  if (s.stateFile) rmSync(s.stateFile, { force: true });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.command === 'start') return start(args);
  const s = readState(args.state);
  switch (args.command) {
    case 'stop':
      if (!s) {
        log(`no cluster is recorded in ${args.state}`);
        return;
      }
      await cleanup(s);
      log(`stopped and removed ${s.dir}`);
      return;
    case 'halt': {
      if (!s) throw new Error(`no cluster is recorded in ${args.state}`);
      const b = broker(s, args.rest[0]);
      const t = Date.now();
      await stopBroker(s, b, args.kill);
      log(`${args.kill ? 'killed' : 'stopped'} broker ${b.id} in ${((Date.now() - t) / 1000).toFixed(1)} s; data kept`);
      return;
    }
    case 'resume': {
      if (!s) throw new Error(`no cluster is recorded in ${args.state}`);
      const b = broker(s, args.rest[0]);
      if (alive(b.pid)) throw new Error(`broker ${b.id} is still running (pid ${b.pid})`);
      const t = Date.now();
      launch(b, classpath());
      saveState(s);
      await waitReady(s, b);
      log(`broker ${b.id} is back after ${((Date.now() - t) / 1000).toFixed(1)} s`);
      printState(s);
      return;
    }
    case 'status':
      if (!s || !s.brokers.some((b) => alive(b.pid))) {
        log('not running');
        process.exitCode = 1;
        return;
      }
      printState(s);
      return;
    default:
      throw new Error(`unknown command "${args.command}": use start, stop, halt <n>, resume <n> or status`);
  }
}

runMain(main, { marker: 'KAFKA_UNAVAILABLE', log });
