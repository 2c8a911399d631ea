/**
 * What the scripts that start real servers for the tests share (a Kafka broker,
 * a Kafka cluster, a RabbitMQ cluster): free ports, state files, process checks
 * and stops, Maven classpaths, tails of logs, and the exit convention.
 *
 * The convention: a script prints `NAME=value` lines on stdout, its last the one
 * a caller needs; it exits 0 when done, 3 when a prerequisite is missing (with a
 * `<MARKER>=<reason>` line, so the tests can skip with that reason), 1 otherwise.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';

/** A prerequisite is missing (java, mvn, a package): the caller skips, saying why. */
export class Unavailable extends Error {}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A logger writing `[prefix] message` to stderr, so stdout keeps only `NAME=value` lines. */
export function logger(prefix) {
  return (message) => process.stderr.write(`[${prefix}] ${message}\n`);
}

/** Whether a command runs at all (`<command> -version`). */
export function has(command) {
  return !spawnSync(command, ['-version'], { stdio: 'ignore' }).error;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
export function portOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Running, and not a zombie waiting to be reaped. */
export function alive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (error.code !== 'EPERM') return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/**
 * Whether `pid` is still a process of ours: its command line or its environment holds
 * `marker` (a folder of our own), so a recorded pid that the system gave to another
 * process since is never signalled.
 */
export function ours(pid, marker) {
  if (!alive(pid)) return false;
  for (const f of ['cmdline', 'environ']) {
    try {
      if (readFileSync(`/proc/${pid}/${f}`, 'utf8').includes(marker)) return true;
    } catch (error) {
      // No /proc (not Linux): the recorded pid is trusted.
      if (error.code === 'ENOENT' && !existsSync('/proc/self')) return true;
    }
  }
  return false;
}

export function readState(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

export function saveState(file, state) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(state, null, 2));
}

/** Resolves when `pid` has exited or `timeoutMs` has passed; true when it exited. */
export async function waitExit(pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  return !alive(pid);
}

/** SIGTERM (or SIGKILL when `kill`), then SIGKILL after `timeoutMs`; resolves once the process is gone. */
export async function terminate(pid, { timeoutMs, kill = false, log = () => {}, what = `pid ${pid}` }) {
  if (!alive(pid)) return;
  try {
    process.kill(pid, kill ? 'SIGKILL' : 'SIGTERM');
  } catch {
    return;
  }
  if (await waitExit(pid, kill ? 10_000 : timeoutMs)) return;
  log(`${what} did not stop within ${timeoutMs / 1000} s: killing it`);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  await waitExit(pid, 10_000);
}

/** SIGKILL if it is ours and alive; for cleaning up after a failure. */
export function killIfOurs(pid, marker) {
  if (!ours(pid, marker)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** The last `count` lines of each of `files` in `dir` that exists. */
export function tailFiles(dir, files, count) {
  const lines = [];
  for (const f of files) {
    try {
      lines.push(...readFileSync(join(dir, f), 'utf8').trim().split('\n').slice(-count));
    } catch {
      /* not written yet */
    }
  }
  return lines.join('\n');
}

/** Runs a command to completion; throws with the end of its output when it fails. */
export function run(cmd, args, what, timeoutMs = 120_000) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) {
    throw new Error(`${what} failed: ${(r.stderr || r.stdout || r.error?.message || '').trim().split('\n').slice(-10).join('\n')}`);
  }
  return r.stdout;
}

/**
 * The runtime classpath of a Maven pom, resolved once and cached in `cacheDir` per pom
 * content; Unavailable when Maven is missing or cannot reach its repository.
 */
export function mavenClasspath({ pom, cacheDir, what, log = () => {} }) {
  mkdirSync(cacheDir, { recursive: true });
  const digest = createHash('sha1').update(readFileSync(pom)).digest('hex').slice(0, 12);
  const cache = join(cacheDir, `classpath-${digest}.txt`);
  if (existsSync(cache)) {
    const cp = readFileSync(cache, 'utf8').trim();
    if (cp && cp.split(':').every((jar) => existsSync(jar))) return cp;
  }
  if (!has('mvn')) throw new Unavailable(`mvn (Maven) is not installed: the ${what} jars cannot be resolved`);
  log(`resolving the ${what} jars with Maven (cached after the first run)…`);
  const r = spawnSync('mvn', ['-q', '-B', '-f', pom, 'dependency:build-classpath', `-Dmdep.outputFile=${cache}`, '-Dmdep.includeScope=runtime'], {
    encoding: 'utf8',
    timeout: 10 * 60_000,
  });
  if (r.status !== 0 || !existsSync(cache)) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Unavailable(`Maven could not resolve the ${what} jars (no network to Maven Central?): ${out || r.error?.message || 'exit ' + r.status}`);
  }
  return readFileSync(cache, 'utf8').trim();
}

/** Runs a script's main with the exit convention: Unavailable prints `<marker>=<reason>` and exits 3. */
export function runMain(main, { marker, log }) {
  main().catch((error) => {
    if (error instanceof Unavailable) {
      console.log(`${marker}=${error.message.replace(/\s*\n\s*/g, ' | ')}`);
      process.exitCode = 3;
    } else {
      log(error.stack ?? String(error));
      process.exitCode = 1;
    }
  });
}
