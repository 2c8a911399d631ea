#!/usr/bin/env node
/**
 * Local stand-ins for Amazon SQS, SNS and Kinesis, for the tests and for people
 * trying Brokerdeck without an AWS account:
 *
 *   SQS      ElasticMQ (org.elasticmq:elasticmq-server_2.13, resolved by Maven from
 *            tests/aws/pom.xml and cached), bound to 127.0.0.1 by its configuration
 *   SNS      fauxqs (npm), with its SNS → SQS fan-out
 *   Kinesis  kinesis-local (npm), plain HTTP port
 *
 * fauxqs and kinesis-local listen on every interface by themselves; both run with
 * tests/aws/loopback.cjs preloaded, which binds their sockets to 127.0.0.1. Their npm
 * packages (tests/aws/package.json) are installed once into a cache folder outside
 * the work tree.
 *
 *   node tests/aws/aws.mjs start [sqs,sns,kinesis]   start those (default: all) on free ports,
 *                                                     wait until each answers, print
 *                                                     SQS_ENDPOINT=…, SNS_ENDPOINT=…, KINESIS_ENDPOINT=…
 *                                                     (or <NAME>_UNAVAILABLE=<reason> for one that
 *                                                     cannot run here)
 *   node tests/aws/aws.mjs stop                       stop what the state file records, remove its data
 *   node tests/aws/aws.mjs status                     print the endpoints (exit 1 when none runs)
 *
 * `--state <file>` (or AWS_TEST_STATE_FILE) names the state file; only the processes
 * recorded there are ever stopped, so two checkouts never stop each other's servers.
 *
 * Exit codes: 0 at least one server runs; 3 none could be started (each reason printed); 1 anything else.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, freePort, has, logger, mavenClasspath, readState, saveState, sleep, terminate as stopPid, Unavailable } from '../servers/kit.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const workDir = join(os.tmpdir(), 'brokerdeck-aws');
const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 10_000;
const ALL = ['sqs', 'sns', 'kinesis'];
const log = logger('aws');
const terminate = (pid) => stopPid(pid, { timeoutMs: STOP_TIMEOUT_MS, log });

function parseArgs(argv) {
  const args = { command: argv[0] ?? 'start', which: ALL, state: process.env.AWS_TEST_STATE_FILE ?? join(workDir, 'servers.json') };
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '--state') args.state = argv[++i];
    else if (/^[a-z,]+$/.test(argv[i])) {
      args.which = argv[i].split(',').filter(Boolean);
      const unknown = args.which.filter((w) => !ALL.includes(w));
      if (unknown.length > 0) throw new Error(`unknown server ${unknown.join(', ')}: use sqs, sns, kinesis`);
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

/** ElasticMQ's jars, resolved by Maven once; the classpath is cached per pom.xml content. */
function elasticmqClasspath() {
  if (!has('java')) throw new Unavailable('java is not installed: ElasticMQ cannot run');
  return mavenClasspath({ pom: join(here, 'pom.xml'), cacheDir: join(workDir, 'elasticmq'), what: 'ElasticMQ', log });
}

/** The npm servers, installed once per package.json content into a folder of their own. */
function npmServers() {
  const manifest = join(here, 'package.json');
  const digest = createHash('sha1').update(readFileSync(manifest)).update(readFileSync(join(here, 'package-lock.json'))).digest('hex').slice(0, 12);
  const dir = join(workDir, `npm-${digest}`);
  const ready = join(dir, '.installed');
  if (existsSync(ready)) return dir;
  mkdirSync(dir, { recursive: true });
  copyFileSync(manifest, join(dir, 'package.json'));
  copyFileSync(join(here, 'package-lock.json'), join(dir, 'package-lock.json'));
  log('installing fauxqs and kinesis-local with npm (cached after the first run)…');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], { cwd: dir, encoding: 'utf8', timeout: 5 * 60_000 });
  if (r.status !== 0) {
    throw new Unavailable(`npm could not install the SNS and Kinesis test servers: ${(r.stderr || r.stdout || r.error?.message || '').trim().split('\n').slice(-5).join(' | ')}`);
  }
  writeFileSync(ready, new Date().toISOString());
  return dir;
}

function launch(dataDir, name, command, args, options = {}) {
  const out = openSync(join(dataDir, `${name}.log`), 'a');
  const child = spawn(command, args, { detached: true, stdio: ['ignore', out, out], ...options });
  child.unref();
  closeSync(out);
  return child.pid;
}

function startSqs(dataDir, port) {
  const cp = elasticmqClasspath();
  const config = join(dataDir, 'elasticmq.conf');
  writeFileSync(
    config,
    [
      'include classpath("application.conf")',
      `node-address { protocol = http, host = "127.0.0.1", port = ${port}, context-path = "" }`,
      `rest-sqs { enabled = true, bind-port = ${port}, bind-hostname = "127.0.0.1", sqs-limits = strict }`,
      'rest-stats { enabled = false }',
      // No queues survive a restart: every run starts empty.
      'queues-storage { enabled = false }',
      '',
    ].join('\n'),
  );
  const heap = (process.env.ELASTICMQ_HEAP_OPTS ?? '-Xms64m -Xmx384m').split(/\s+/).filter(Boolean);
  return launch(dataDir, 'sqs', 'java', [...heap, '-XX:+UseSerialGC', `-Dconfig.file=${config}`, '-cp', cp, 'org.elasticmq.server.Main']);
}

function startSns(dataDir, port) {
  const dir = npmServers();
  return launch(dataDir, 'sns', process.execPath, ['-r', join(here, 'loopback.cjs'), join(dir, 'node_modules', 'fauxqs', 'dist', 'cli.js')], {
    env: { ...process.env, FAUXQS_PORT: String(port), FAUXQS_HOST: '127.0.0.1', FAUXQS_LOGGER: 'false' },
  });
}

async function startKinesis(dataDir, port) {
  const dir = npmServers();
  const pkg = join(dir, 'node_modules', 'kinesis-local');
  // Its TLS port is opened too (it has no switch to leave it closed): a free one, on loopback.
  const tls = await freePort();
  return launch(dataDir, 'kinesis', process.execPath, ['-r', join(here, 'loopback.cjs'), join(pkg, 'main.js')], {
    // It reads its certificate (server.json) from the working folder.
    cwd: pkg,
    env: {
      ...process.env,
      KINESIS_MOCK_PLAIN_PORT: String(port),
      KINESIS_MOCK_TLS_PORT: String(tls),
      LOG_LEVEL: 'WARN',
      SHOULD_PERSIST_DATA: 'false',
      CREATE_STREAM_DURATION: '50ms',
      DELETE_STREAM_DURATION: '50ms',
      REGISTER_STREAM_CONSUMER_DURATION: '50ms',
      DEREGISTER_STREAM_CONSUMER_DURATION: '50ms',
    },
  });
}

/** Any HTTP answer on the port means the server is up (each answers an empty POST with an error of its own). */
function answers(port) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', timeout: 2_000, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end('Action=ListQueues');
  });
}

function tail(dataDir, name) {
  try {
    return readFileSync(join(dataDir, `${name}.log`), 'utf8').trim().split('\n').slice(-8).join(' | ');
  } catch {
    return '(no log)';
  }
}

async function waitReady(dataDir, name, server) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!alive(server.pid)) throw new Error(`${name} exited while starting: ${tail(dataDir, name)}`);
    if (await answers(server.port)) return;
    await sleep(200);
  }
  throw new Error(`${name} did not answer within ${READY_TIMEOUT_MS / 1000} s: ${tail(dataDir, name)}`);
}

const ENV = { sqs: 'SQS', sns: 'SNS', kinesis: 'KINESIS' };

function printState(s) {
  console.log(`AWS_TEST_STATE_FILE=${s.stateFile}`);
  for (const [name, reason] of Object.entries(s.unavailable ?? {})) console.log(`${ENV[name]}_UNAVAILABLE=${reason.replace(/\s*\n\s*/g, ' | ')}`);
  for (const [name, server] of Object.entries(s.servers)) console.log(`${ENV[name]}_ENDPOINT=http://127.0.0.1:${server.port}`);
}

async function start(stateFile, which) {
  const existing = readState(stateFile);
  if (existing) {
    const running = Object.entries(existing.servers).filter(([, s]) => alive(s.pid));
    if (running.length === Object.keys(existing.servers).length && which.every((w) => existing.servers[w] || existing.unavailable?.[w])) {
      log('already running');
      printState(existing);
      return;
    }
    await stop(stateFile);
  }
  mkdirSync(workDir, { recursive: true });
  const dataDir = join(workDir, `servers-${process.pid}-${Date.now()}`);
  mkdirSync(dataDir, { recursive: true });
  const s = { stateFile, dataDir, servers: {}, unavailable: {} };
  const save = () => saveState(stateFile, s);
  const starters = { sqs: startSqs, sns: startSns, kinesis: startKinesis };
  // Launched one after the other (each records its pid at once), then awaited together.
  for (const name of which) {
    try {
      const port = await freePort();
      const pid = await starters[name](dataDir, port);
      s.servers[name] = { pid, port };
      save();
    } catch (error) {
      s.unavailable[name] = error.message;
      log(`${name}: ${error.message}`);
    }
  }
  save();
  await Promise.all(
    Object.entries(s.servers).map(async ([name, server]) => {
      try {
        await waitReady(dataDir, name, server);
        log(`${name} ready on 127.0.0.1:${server.port} (pid ${server.pid})`);
      } catch (error) {
        s.unavailable[name] = error.message;
        await terminate(server.pid);
        delete s.servers[name];
      }
    }),
  );
  save();
  printState(s);
  if (Object.keys(s.servers).length === 0) {
    await stop(stateFile);
    process.exitCode = 3;
  }
}

async function stop(stateFile) {
  const s = readState(stateFile);
  if (!s) {
    log(`no servers are recorded in ${stateFile}`);
    return;
  }
  await Promise.all(Object.values(s.servers).map((server) => terminate(server.pid)));
  if (s.dataDir && s.dataDir.startsWith(workDir)) rmSync(s.dataDir, { recursive: true, force: true });
  rmSync(stateFile, { force: true });
  log(`stopped ${Object.keys(s.servers).join(', ') || 'nothing'}`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  switch (args.command) {
    case 'start':
      return start(args.state, args.which);
    case 'stop':
      return stop(args.state);
    case 'status': {
      const s = readState(args.state);
      if (!s || !Object.values(s.servers).some((server) => alive(server.pid))) {
        log('not running');
        process.exitCode = 1;
        return;
      }
      printState(s);
      return;
    }
    default:
      throw new Error(`unknown command "${args.command}": use start, stop or status`);
  }
}

main().catch((error) => {
  log(error.stack ?? String(error));
  process.exitCode = 1;
});
