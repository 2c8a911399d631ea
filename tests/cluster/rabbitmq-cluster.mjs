#!/usr/bin/env node
/**
 * A real three-node RabbitMQ cluster on this machine, from the installed
 * rabbitmq-server (Debian package), for the cluster tests.
 *
 *   node tests/cluster/rabbitmq-cluster.mjs start         start three nodes, join them into one cluster with
 *                                                        rabbitmqctl join_cluster, wait until each answers on
 *                                                        AMQP and HTTP; prints NAME=value lines, RABBITMQ_CLUSTER_URLS last
 *   node tests/cluster/rabbitmq-cluster.mjs stop          stop every node and remove the cluster's data
 *   node tests/cluster/rabbitmq-cluster.mjs halt <n>      stop node n (1-3) gracefully, keeping its data (--kill: SIGKILL, as a crash)
 *   node tests/cluster/rabbitmq-cluster.mjs resume <n>    start node n again on its data and ports; returns once it answers
 *   node tests/cluster/rabbitmq-cluster.mjs status        print the state (exit 1 when no node runs)
 *   node tests/cluster/rabbitmq-cluster.mjs ctl <n> ...   rabbitmqctl against node n, with the cluster's cookie
 *
 * Every node has a name of its own (`bd-<random>-<n>@localhost`), its own AMQP,
 * management and distribution ports (free ones, on 127.0.0.1 only), its own
 * data, log and configuration in one temporary folder, and the cluster has an
 * Erlang cookie and an epmd (port mapper, on a free port) of its own. So the
 * machine's own RabbitMQ (rabbit@localhost on 5672, the system epmd on 4369)
 * and a cluster started by another checkout are never touched: `stop` ends
 * only the processes recorded in its state file, after checking that each
 * still belongs to this cluster's folder.
 *
 * `--state <file>` (or RABBITMQ_CLUSTER_STATE_FILE) names the state file; the
 * default lives in os.tmpdir(). `--nodes <n>` starts another number of nodes.
 *
 * Exit codes: 0 done; 3 rabbitmq-server is not installed, with a
 * RABBITMQ_UNAVAILABLE=<reason> line; 1 anything else.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { alive, freePort, killIfOurs, logger, ours, portOpen, readState, runMain, saveState as save, sleep, tailFiles, terminate, Unavailable, waitExit } from '../servers/kit.mjs';

const RABBIT_BIN = process.env.RABBITMQ_BIN_DIR ?? '/usr/lib/rabbitmq/bin';
const EPMD = ['/usr/bin/epmd', '/usr/lib/erlang/bin/epmd'].find((p) => existsSync(p)) ?? 'epmd';
const workDir = join(os.tmpdir(), 'brokerdeck-rabbitmq-cluster');
const READY_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 60_000;
const CTL_TIMEOUT_MS = 120_000;
const log = logger('rabbitmq-cluster');

function parseArgs(argv) {
  const args = { command: argv[0] ?? 'start', rest: [], state: process.env.RABBITMQ_CLUSTER_STATE_FILE ?? join(workDir, 'cluster.json'), nodes: 3, kill: false };
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '--state') args.state = argv[++i];
    else if (argv[i] === '--nodes') args.nodes = Number(argv[++i]);
    else if (argv[i] === '--kill') args.kill = true;
    else args.rest.push(argv[i]);
  }
  if (!Number.isInteger(args.nodes) || args.nodes < 1 || args.nodes > 9) throw new Error('--nodes must be a whole number from 1 to 9');
  return args;
}

function saveState(s) {
  save(s.stateFile, s);
}

/** The environment the server scripts and the CLI tools of one node run with. */
function nodeEnv(s, node) {
  const env = { ...process.env };
  // Nothing of the machine's own node may leak in: its env file, config files and node name.
  for (const k of Object.keys(env)) if (k.startsWith('RABBITMQ_') || k === 'NODENAME' || k === 'ERL_FLAGS') delete env[k];
  return {
    ...env,
    HOME: s.dir,
    ERL_EPMD_PORT: String(s.epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_CONF_ENV_FILE: join(s.dir, 'rabbitmq-env.conf'),
    RABBITMQ_NODENAME: node.name,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(node.amqpPort),
    RABBITMQ_DIST_PORT: String(node.distPort),
    RABBITMQ_MNESIA_BASE: join(node.dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(node.dir, 'log'),
    RABBITMQ_CONFIG_FILE: join(node.dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(node.dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(node.dir, 'enabled_plugins'),
    RABBITMQ_PID_FILE: join(node.dir, 'rabbitmq.pid'),
    // The distribution listener on loopback only. (The VM's command line names HOME, the cluster's
    // folder, which is how `stop` recognises its processes.)
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
}

/** The CLI tools talk to the nodes over Erlang distribution: same cookie (HOME) and port mapper. */
function ctlEnv(s) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('RABBITMQ_') || k === 'NODENAME' || k === 'ERL_FLAGS') delete env[k];
  return { ...env, HOME: s.dir, ERL_EPMD_PORT: String(s.epmdPort), ERL_EPMD_ADDRESS: '127.0.0.1', RABBITMQ_CONF_ENV_FILE: join(s.dir, 'rabbitmq-env.conf') };
}

function ctl(s, node, args, timeoutMs = CTL_TIMEOUT_MS) {
  return new Promise((resolve) => {
    const child = spawn(join(RABBIT_BIN, 'rabbitmqctl'), ['-n', node.name, ...args], { env: ctlEnv(s), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: -1, out: String(error) });
    });
  });
}

async function mustCtl(s, node, args) {
  const r = await ctl(s, node, args);
  if (r.code !== 0) throw new Error(`rabbitmqctl -n ${node.name} ${args.join(' ')} failed (${r.code}): ${r.out.trim().split('\n').slice(-8).join(' | ')}`);
  return r.out;
}

function nodeConfig(node) {
  return [
    `management.tcp.ip = 127.0.0.1`,
    `management.tcp.port = ${node.mgmtPort}`,
    // Statistics each second rather than each 5 s, so counts in the management API follow quickly.
    'collect_statistics_interval = 1000',
    'log.file.level = info',
    '',
  ].join('\n');
}

function launch(s, node) {
  mkdirSync(join(node.dir, 'log'), { recursive: true });
  const out = openSync(join(node.dir, 'stdout.log'), 'a');
  const child = spawn(join(RABBIT_BIN, 'rabbitmq-server'), [], { env: nodeEnv(s, node), cwd: node.dir, detached: true, stdio: ['ignore', out, out] });
  child.unref();
  closeSync(out);
  node.pid = child.pid;
  node.beamPid = 0;
}

/** The Erlang VM's pid (the script that started it waits as its parent), from the pid file the node writes. */
function beamPid(node) {
  try {
    const pid = Number(readFileSync(join(node.dir, 'rabbitmq.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : 0;
  } catch {
    return 0;
  }
}

function tail(node) {
  return tailFiles(node.dir, ['stdout.log', join('log', `${node.name}.log`)], 15);
}

/** Both listeners answer: the node has booted, and its management plugin is up. */
async function waitListening(s, node, timeoutMs = READY_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive(node.pid)) throw new Error(`node ${node.name} exited while starting; its log:\n${tail(node)}`);
    if ((await portOpen(node.amqpPort)) && (await portOpen(node.mgmtPort))) {
      node.beamPid = beamPid(node);
      saveState(s);
      return;
    }
    await sleep(250);
  }
  throw new Error(`node ${node.name} did not open 127.0.0.1:${node.amqpPort} and :${node.mgmtPort} within ${timeoutMs / 1000} s; its log:\n${tail(node)}`);
}

/** Every node of the cluster is running, as the management API of `via` sees it. */
async function waitClustered(s, via, timeoutMs = READY_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  const auth = 'Basic ' + Buffer.from('guest:guest').toString('base64');
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${via.mgmtPort}/api/nodes?columns=name,running`, { headers: { authorization: auth }, signal: AbortSignal.timeout(10_000) });
      const nodes = await res.json();
      const running = new Set(nodes.filter((n) => n.running).map((n) => n.name));
      last = JSON.stringify(nodes);
      if (s.nodes.every((n) => running.has(n.name))) return;
    } catch (error) {
      last = String(error);
    }
    await sleep(500);
  }
  throw new Error(`the cluster did not show all ${s.nodes.length} nodes running within ${timeoutMs / 1000} s: ${last}`);
}

function printState(s) {
  console.log(`RABBITMQ_CLUSTER_STATE_FILE=${s.stateFile}`);
  console.log(`RABBITMQ_CLUSTER_DIR=${s.dir}`);
  console.log(`RABBITMQ_CLUSTER_NODES=${s.nodes.map((n) => n.name).join(',')}`);
  console.log(`RABBITMQ_CLUSTER_PIDS=${s.nodes.map((n) => (alive(n.pid) ? n.beamPid || n.pid : 0)).join(',')}`);
  console.log(`RABBITMQ_CLUSTER_MANAGEMENT_URLS=${s.nodes.map((n) => `http://127.0.0.1:${n.mgmtPort}`).join(',')}`);
  console.log(`RABBITMQ_CLUSTER_URLS=${s.nodes.map((n) => `amqp://guest:guest@127.0.0.1:${n.amqpPort}`).join(',')}`);
}

async function start(args) {
  const existing = readState(args.state);
  if (existing && existing.nodes.every((n) => ours(n.pid, existing.dir)) && (await Promise.all(existing.nodes.map((n) => portOpen(n.amqpPort)))).every(Boolean)) {
    log(`already running (${existing.dir})`);
    printState(existing);
    return;
  }
  if (existing) await cleanup(existing);
  if (!existsSync(join(RABBIT_BIN, 'rabbitmq-server'))) {
    throw new Unavailable(`rabbitmq-server is not installed (no ${join(RABBIT_BIN, 'rabbitmq-server')}; apt-get install rabbitmq-server, or set RABBITMQ_BIN_DIR)`);
  }
  const started = Date.now();
  mkdirSync(workDir, { recursive: true });
  const id = randomBytes(4).toString('hex');
  const dir = join(workDir, `cluster-${id}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const s = { stateFile: args.state, dir, id, epmdPort: await freePort(), epmdPid: 0, nodes: [] };
  for (let i = 1; i <= args.nodes; i++) {
    const node = { index: i, name: `bd-${id}-${i}@localhost`, dir: join(dir, `node${i}`), amqpPort: await freePort(), mgmtPort: await freePort(), distPort: await freePort(), pid: 0, beamPid: 0 };
    mkdirSync(node.dir, { recursive: true });
    writeFileSync(join(node.dir, 'rabbitmq.conf'), nodeConfig(node));
    writeFileSync(join(node.dir, 'enabled_plugins'), '[rabbitmq_management].\n');
    s.nodes.push(node);
  }
  // One cookie for every node and the CLI tools (HOME is the cluster's folder); an empty env file
  // keeps /etc/rabbitmq/rabbitmq-env.conf (the machine's node name and flags) out.
  writeFileSync(join(dir, '.erlang.cookie'), randomBytes(24).toString('hex').toUpperCase(), { mode: 0o400 });
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  saveState(s);
  try {
    // A port mapper of the cluster's own, on loopback: the nodes register there, not with the machine's.
    const epmdOut = openSync(join(dir, 'epmd.log'), 'a');
    const epmd = spawn(EPMD, ['-port', String(s.epmdPort), '-address', '127.0.0.1'], { detached: true, stdio: ['ignore', epmdOut, epmdOut] });
    epmd.unref();
    closeSync(epmdOut);
    s.epmdPid = epmd.pid;
    saveState(s);
    for (let i = 0; i < 100 && !(await portOpen(s.epmdPort)); i++) await sleep(50);
    if (!(await portOpen(s.epmdPort))) throw new Error(`epmd did not open 127.0.0.1:${s.epmdPort}`);

    log(`starting ${s.nodes.length} nodes (${s.nodes.map((n) => n.name).join(', ')}) in ${dir}…`);
    for (const node of s.nodes) launch(s, node);
    saveState(s);
    const [first, ...others] = s.nodes;
    await waitListening(s, first);
    log(`${first.name} is up after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // Joined one at a time: each join changes the cluster's schema.
    for (const node of others) {
      await waitListening(s, node);
      await mustCtl(s, node, ['stop_app']);
      await mustCtl(s, node, ['join_cluster', first.name]);
      await mustCtl(s, node, ['start_app']);
      await waitListening(s, node);
      log(`${node.name} joined after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    await waitClustered(s, first);
  } catch (error) {
    await cleanup(s);
    throw error;
  }
  log(`cluster of ${s.nodes.length} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  printState(s);
}

function node(s, which) {
  const i = Number(which);
  const n = s.nodes.find((x) => x.index === i || x.name === which);
  if (!n) throw new Error(`no node "${which}" in this cluster: use 1-${s.nodes.length} or a node name`);
  return n;
}

/** Stops one node: SIGTERM makes RabbitMQ shut down as `rabbitmqctl stop` does; SIGKILL is a crash. */
async function stopNode(s, n, kill) {
  const beam = n.beamPid || beamPid(n);
  const target = beam && ours(beam, s.dir) ? beam : ours(n.pid, s.dir) ? n.pid : 0;
  if (!target) return;
  await terminate(target, { timeoutMs: STOP_TIMEOUT_MS, kill, log, what: n.name });
  // The script that started the VM exits with it.
  await waitExit(n.pid, 10_000);
}

async function cleanup(s) {
  await Promise.all(
    s.nodes.map(async (n) => {
      for (const pid of [n.beamPid || beamPid(n), n.pid]) if (pid) killIfOurs(pid, s.dir);
      await waitExit(n.beamPid || n.pid, 10_000);
    }),
  );
  if (s.epmdPid) killIfOurs(s.epmdPid, `\0${s.epmdPort}\0`);
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
      const n = node(s, args.rest[0]);
      const t = Date.now();
      await stopNode(s, n, args.kill);
      log(`${args.kill ? 'killed' : 'stopped'} ${n.name} in ${((Date.now() - t) / 1000).toFixed(1)} s; data kept`);
      return;
    }
    case 'resume': {
      if (!s) throw new Error(`no cluster is recorded in ${args.state}`);
      const n = node(s, args.rest[0]);
      if (alive(n.pid)) throw new Error(`${n.name} is still running (pid ${n.pid})`);
      const t = Date.now();
      rmSync(join(n.dir, 'rabbitmq.pid'), { force: true });
      launch(s, n);
      saveState(s);
      await waitListening(s, n);
      await waitClustered(s, n);
      log(`${n.name} is back after ${((Date.now() - t) / 1000).toFixed(1)} s`);
      printState(s);
      return;
    }
    case 'ctl': {
      if (!s) throw new Error(`no cluster is recorded in ${args.state}`);
      const r = await ctl(s, node(s, args.rest[0]), args.rest.slice(1));
      process.stdout.write(r.out);
      process.exitCode = r.code ?? 1;
      return;
    }
    case 'status':
      if (!s || !s.nodes.some((n) => alive(n.pid))) {
        log('not running');
        process.exitCode = 1;
        return;
      }
      printState(s);
      return;
    default:
      throw new Error(`unknown command "${args.command}": use start, stop, halt <n>, resume <n>, status or ctl <n> …`);
  }
}

runMain(main, { marker: 'RABBITMQ_UNAVAILABLE', log });
