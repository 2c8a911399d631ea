#!/usr/bin/env node
/**
 * The Google Cloud Pub/Sub emulator (the Cloud SDK's `cloud-pubsub-emulator`, a
 * Java server) for the tests and for trying Brokerdeck without a Google Cloud
 * project:
 *
 *   node tests/pubsub/pubsub.mjs start    start it on 127.0.0.1 and a free port, wait until
 *                                         it answers, print PUBSUB_EMULATOR_HOST=127.0.0.1:<port>
 *                                         (or PUBSUB_UNAVAILABLE=<reason>, exit 3, when Java or
 *                                         the emulator is missing)
 *   node tests/pubsub/pubsub.mjs stop     stop what the state file records, remove its data
 *   node tests/pubsub/pubsub.mjs status   print the host (exit 1 when it does not run)
 *
 * `--state <file>` (or PUBSUB_TEST_STATE_FILE) names the state file; only the process
 * recorded there is ever stopped. The emulator runs in a process group of its own
 * (the launcher script execs the JVM), and stopping signals the whole group, so no
 * JVM outlives it. Its working folder (a data dir of its own) is removed on stop.
 * PUBSUB_EMULATOR_BIN points at another emulator launcher.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { alive, freePort, has, logger, readState, runMain, saveState, sleep, Unavailable, waitExit } from '../servers/kit.mjs';

const workDir = join(os.tmpdir(), 'brokerdeck-pubsub');
const EMULATOR = process.env.PUBSUB_EMULATOR_BIN ?? '/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator';
const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 10_000;
const log = logger('pubsub');

function parseArgs(argv) {
  const args = { command: argv[0] ?? 'start', state: process.env.PUBSUB_TEST_STATE_FILE ?? join(workDir, 'emulator.json') };
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '--state') args.state = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

function tail(dataDir) {
  try {
    return readFileSync(join(dataDir, 'emulator.log'), 'utf8').trim().split('\n').slice(-8).join(' | ');
  } catch {
    return '(no log)';
  }
}

/** The emulator logs "Server started, listening on <port>" once its gRPC server is up. */
function started(dataDir) {
  try {
    return /Server started, listening on/.test(readFileSync(join(dataDir, 'emulator.log'), 'utf8'));
  } catch {
    return false;
  }
}

function connects(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000, () => socket.destroy());
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}

/** SIGTERM to the emulator's process group, SIGKILL after a while. */
async function terminateGroup(pid) {
  if (!pid || !alive(pid)) return;
  const signal = (sig) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* gone */
      }
    }
  };
  signal('SIGTERM');
  if (await waitExit(pid, STOP_TIMEOUT_MS)) return;
  log(`the emulator (pid ${pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s: killing it`);
  signal('SIGKILL');
  await waitExit(pid, 10_000);
}

function printState(s) {
  console.log(`PUBSUB_TEST_STATE_FILE=${s.stateFile}`);
  console.log(`PUBSUB_EMULATOR_HOST=127.0.0.1:${s.port}`);
}

async function start(stateFile) {
  const existing = readState(stateFile);
  if (existing) {
    if (alive(existing.pid)) {
      log('already running');
      printState(existing);
      return;
    }
    await stop(stateFile);
  }
  if (!existsSync(EMULATOR)) throw new Unavailable(`the Pub/Sub emulator is not installed (${EMULATOR} is missing; gcloud components install pubsub-emulator)`);
  if (!has('java')) throw new Unavailable('java is not installed: the Pub/Sub emulator cannot run');
  const dataDir = join(workDir, `emulator-${process.pid}-${Date.now()}`);
  mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const out = openSync(join(dataDir, 'emulator.log'), 'a');
  const heap = process.env.PUBSUB_EMULATOR_HEAP_OPTS ?? '-Xms64m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1';
  // The data dir in the command line marks the process as ours; the emulator keeps its state in memory.
  const child = spawn(EMULATOR, [`--host=127.0.0.1`, `--port=${port}`], {
    cwd: dataDir,
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, JAVA_OPTS: `${heap} -Dbrokerdeck.data=${dataDir}` },
  });
  child.unref();
  closeSync(out);
  const s = { stateFile, dataDir, pid: child.pid, port };
  saveState(stateFile, s);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (!alive(s.pid)) {
      const why = tail(dataDir);
      await stop(stateFile);
      throw new Error(`the Pub/Sub emulator exited while starting: ${why}`);
    }
    if (started(dataDir) && (await connects(port))) break;
    if (Date.now() > deadline) {
      const why = tail(dataDir);
      await stop(stateFile);
      throw new Error(`the Pub/Sub emulator did not answer within ${READY_TIMEOUT_MS / 1000} s: ${why}`);
    }
    await sleep(200);
  }
  log(`ready on 127.0.0.1:${port} (pid ${s.pid})`);
  printState(s);
}

async function stop(stateFile) {
  const s = readState(stateFile);
  if (!s) {
    log(`no emulator is recorded in ${stateFile}`);
    return;
  }
  await terminateGroup(s.pid);
  if (s.dataDir && s.dataDir.startsWith(workDir)) rmSync(s.dataDir, { recursive: true, force: true });
  rmSync(stateFile, { force: true });
  log('stopped');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  switch (args.command) {
    case 'start':
      return start(args.state);
    case 'stop':
      return stop(args.state);
    case 'status': {
      const s = readState(args.state);
      if (!s || !alive(s.pid)) {
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

runMain(main, { marker: 'PUBSUB_UNAVAILABLE', log });
