#!/usr/bin/env node
/**
 * Redis servers for the tests, started from Debian's `redis-server` on
 * 127.0.0.1 and free ports, each with a folder of its own under the temp dir
 * and no persistence (`--save '' --appendonly no`), so the tests never touch a
 * Redis that runs on this machine already.
 *
 *   node tests/redis/redis.mjs start [--requirepass <password>] [--tls]
 *                                            one server; prints REDIS_URL=redis://127.0.0.1:<port>
 *                                            (with --tls: rediss://, TLS only, a self-signed certificate
 *                                            for 127.0.0.1 made with openssl, printed as REDIS_TLS_CA=<file>)
 *   node tests/redis/redis.mjs start-cluster three masters with --cluster-enabled yes, joined by
 *                                            `redis-cli --cluster create … --cluster-replicas 0`;
 *                                            prints REDIS_CLUSTER_URL=redis://127.0.0.1:<first port>
 *   node tests/redis/redis.mjs stop          stops what the state file records, removes its folder
 *   node tests/redis/redis.mjs status        prints the URL (exit 1 when nothing runs)
 *
 * `--state <file>` (or REDIS_TEST_STATE_FILE) names the state file; only the
 * processes recorded there are ever stopped. REDIS_SERVER names another binary.
 *
 * Exit codes (tests/servers/kit.mjs): 0 running; 3 redis-server or redis-cli is
 * missing (REDIS_UNAVAILABLE=<reason>); 1 anything else.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { alive, freePort, logger, ours, readState, runMain, saveState, sleep, tailFiles, terminate, Unavailable } from '../servers/kit.mjs';

const workDir = join(os.tmpdir(), 'brokerdeck-redis');
const READY_TIMEOUT_MS = 30_000;
const log = logger('redis');
const server = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';
const cli = process.env.REDIS_CLI ?? (server.endsWith('redis-server') ? server.replace(/redis-server$/, 'redis-cli') : 'redis-cli');

function parseArgs(argv) {
  const args = { command: argv[0] ?? 'start', state: process.env.REDIS_TEST_STATE_FILE ?? join(workDir, 'server.json'), password: null, tls: false };
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '--state') args.state = argv[++i];
    else if (argv[i] === '--requirepass') args.password = argv[++i];
    else if (argv[i] === '--tls') args.tls = true;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

function requireBinaries(withCli) {
  if (!existsSync(server)) throw new Unavailable(`${server} is missing (Debian's redis-server package)`);
  if (withCli && spawnSync(cli, ['--version'], { stdio: 'ignore' }).error) throw new Unavailable(`${cli} is missing (Debian's redis-tools package)`);
}

/** One redis-server in `dir`, on 127.0.0.1:`port`; its pid. */
function launch(dir, port, extra) {
  mkdirSync(dir, { recursive: true });
  const out = openSync(join(dir, 'redis.log'), 'a');
  // A TLS server listens on its TLS port only.
  const plain = extra.includes('--tls-port') ? '0' : String(port);
  const args = ['--bind', '127.0.0.1', '--port', plain, '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no', '--loglevel', 'warning', ...extra];
  const child = spawn(server, args, { cwd: dir, detached: true, stdio: ['ignore', out, out] });
  child.unref();
  closeSync(out);
  return child.pid;
}

/**
 * Whether `pid` is a server of ours: redis-server rewrites its command line (and the
 * memory behind its environment) into its title, so it is known by its working folder,
 * which is its --dir inside our folder.
 */
function serverOfOurs(pid, dir) {
  if (!alive(pid)) return false;
  try {
    return readlinkSync(`/proc/${pid}/cwd`).startsWith(dir);
  } catch {
    return ours(pid, dir);
  }
}

/** A self-signed certificate and key for 127.0.0.1 in `dir`: the certificate is its own CA. */
function makeCertificate(dir) {
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Unavailable('openssl is missing: no certificate for a TLS server');
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return { cert, key };
}

function ping(port, password, tls) {
  const r = spawnSync(cli, ['-h', '127.0.0.1', '-p', String(port), ...(tls ? ['--tls', '--cacert', tls.cert] : []), ...(password ? ['--no-auth-warning', '-a', password] : []), 'PING'], { encoding: 'utf8', timeout: 5_000 });
  return r.status === 0 && r.stdout.trim() === 'PONG';
}

async function waitReady(dir, pid, port, password, tls) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!alive(pid)) throw new Error(`redis-server exited while starting: ${tailFiles(dir, ['redis.log'], 8)}`);
    if (ping(port, password, tls)) return;
    await sleep(50);
  }
  throw new Error(`redis-server did not answer within ${READY_TIMEOUT_MS / 1000} s: ${tailFiles(dir, ['redis.log'], 8)}`);
}

function printState(s) {
  console.log(`REDIS_TEST_STATE_FILE=${s.stateFile}`);
  if (s.tls) console.log(`REDIS_TLS_CA=${s.tls.cert}`);
  if (s.cluster) console.log(`REDIS_CLUSTER_URL=redis://127.0.0.1:${s.nodes[0].port}`);
  else console.log(`REDIS_URL=${s.tls ? 'rediss' : 'redis'}://127.0.0.1:${s.nodes[0].port}`);
}

async function start(args, cluster) {
  requireBinaries(true);
  if (readState(args.state)) await stop(args.state);
  const dir = join(workDir, `${cluster ? 'cluster' : 'server'}-${process.pid}-${Date.now()}`);
  const s = { stateFile: args.state, dir, cluster, nodes: [], tls: null };
  try {
    if (args.tls && !cluster) s.tls = makeCertificate(join(dir, 'tls'));
    const count = cluster ? 3 : 1;
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const nodeDir = join(dir, `node-${i}`);
      const extra = cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'), '--cluster-node-timeout', '5000'] : [];
      if (args.password) extra.push('--requirepass', args.password);
      if (s.tls) extra.push('--tls-port', String(port), '--tls-cert-file', s.tls.cert, '--tls-key-file', s.tls.key, '--tls-ca-cert-file', s.tls.cert, '--tls-auth-clients', 'no');
      const pid = launch(nodeDir, port, extra);
      s.nodes.push({ pid, port, dir: nodeDir });
      saveState(args.state, s);
    }
    for (const n of s.nodes) await waitReady(n.dir, n.pid, n.port, args.password, s.tls);
    if (cluster) {
      const r = spawnSync(cli, ['--cluster', 'create', ...s.nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 60_000 });
      if (r.status !== 0) throw new Error(`redis-cli --cluster create failed: ${(r.stdout + r.stderr).trim().split('\n').slice(-6).join(' | ')}`);
      // The cluster serves every slot once each node has heard of the others.
      const deadline = Date.now() + READY_TIMEOUT_MS;
      for (;;) {
        const info = spawnSync(cli, ['-h', '127.0.0.1', '-p', String(s.nodes[0].port), 'CLUSTER', 'INFO'], { encoding: 'utf8', timeout: 5_000 });
        if (/cluster_state:ok/.test(info.stdout ?? '') && s.nodes.every((n) => /cluster_state:ok/.test(spawnSync(cli, ['-p', String(n.port), 'CLUSTER', 'INFO'], { encoding: 'utf8' }).stdout ?? ''))) break;
        if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok');
        await sleep(100);
      }
    }
    log(`${cluster ? 'cluster' : 'server'} ready on ${s.nodes.map((n) => `127.0.0.1:${n.port}`).join(', ')}`);
    printState(s);
  } catch (error) {
    for (const n of s.nodes) {
      if (serverOfOurs(n.pid, dir)) process.kill(n.pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
    rmSync(args.state, { force: true });
    throw error;
  }
}

async function stop(stateFile) {
  const s = readState(stateFile);
  if (!s) {
    log(`nothing is recorded in ${stateFile}`);
    return;
  }
  await Promise.all(s.nodes.filter((n) => serverOfOurs(n.pid, s.dir)).map((n) => terminate(n.pid, { timeoutMs: 10_000, log, what: `redis-server ${n.port}` })));
  if (s.dir && s.dir.startsWith(workDir)) rmSync(s.dir, { recursive: true, force: true });
  rmSync(stateFile, { force: true });
  log(`stopped ${s.nodes.map((n) => n.port).join(', ')}`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  switch (args.command) {
    case 'start':
      return start(args, false);
    case 'start-cluster':
      return start(args, true);
    case 'stop':
      return stop(args.state);
    case 'status': {
      const s = readState(args.state);
      if (!s || !s.nodes.some((n) => alive(n.pid))) {
        log('not running');
        process.exitCode = 1;
        return;
      }
      printState(s);
      return;
    }
    default:
      throw new Error(`unknown command "${args.command}": use start, start-cluster, stop or status`);
  }
}

runMain(main, { marker: 'REDIS_UNAVAILABLE', log });
