#!/usr/bin/env node
/**
 * A real Apicurio Registry (Confluent-compatible API under /apis/ccompat/v7) for the
 * tests, with in-memory storage, on 127.0.0.1 and a free port.
 *
 *   node tests/schema-registry/registry.mjs start   build the runnable registry once (Maven,
 *                                                   Quarkus augmentation; cached), start it, wait
 *                                                   until its API answers, print SCHEMA_REGISTRY_URL last
 *   node tests/schema-registry/registry.mjs stop    stop it and remove its files
 *
 * `--state <file>` (or SCHEMA_REGISTRY_STATE_FILE) names the state file.
 * Exit codes: 0 done; 3 a prerequisite is missing (java, mvn, the jars), with a
 * SCHEMA_REGISTRY_UNAVAILABLE=<reason> line; 1 anything else.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, freePort, has, logger, ours, readState, runMain, saveState, sleep, tailFiles, terminate, Unavailable } from '../servers/kit.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const workDir = join(os.tmpdir(), 'brokerdeck-schema-registry');
const READY_TIMEOUT_MS = 120_000;
const log = logger('schema-registry');

function parseArgs(argv) {
  const args = { command: argv[0] ?? 'start', state: process.env.SCHEMA_REGISTRY_STATE_FILE ?? join(workDir, 'registry.json') };
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '--state') args.state = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

/** The build inputs: pom.xml and src/, hashed so a change rebuilds. */
function digest() {
  const h = createHash('sha1');
  const walk = (p) => {
    if (statSync(p).isDirectory()) for (const f of readdirSync(p).sort()) walk(join(p, f));
    else h.update(relative(here, p)).update(readFileSync(p));
  };
  walk(join(here, 'pom.xml'));
  walk(join(here, 'src'));
  return h.digest('hex').slice(0, 12);
}

/** Runs Quarkus' augmentation over the published registry jar once per build-input digest. */
function runnerJar() {
  const buildDir = join(workDir, `build-${digest()}`);
  const jar = join(buildDir, 'schema-registry-1.0.0-runner.jar');
  if (existsSync(jar)) return jar;
  if (!has('mvn')) throw new Unavailable('mvn (Maven) is not installed: the registry cannot be built');
  log('building the registry with Maven and Quarkus (cached after the first run)…');
  const r = spawnSync('mvn', ['-q', '-B', '-f', join(here, 'pom.xml'), 'package', '-DskipTests', `-Dregistry.build.dir=${buildDir}`], {
    encoding: 'utf8',
    timeout: 10 * 60_000,
  });
  if (r.status !== 0 || !existsSync(jar)) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').filter((l) => l.includes('ERROR')).slice(0, 5).join('\n');
    rmSync(buildDir, { recursive: true, force: true });
    throw new Unavailable(`Maven could not build Apicurio Registry (no network to Maven Central?): ${out || r.error?.message || 'exit ' + r.status}`);
  }
  return jar;
}

async function answers(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/apis/ccompat/v7/subjects`, { signal: AbortSignal.timeout(2_000) });
    return res.ok;
  } catch {
    return false;
  }
}

async function start(stateFile) {
  const existing = readState(stateFile);
  if (existing && ours(existing.pid, existing.dataDir) && (await answers(existing.port))) {
    console.log(`SCHEMA_REGISTRY_URL=http://127.0.0.1:${existing.port}/apis/ccompat/v7`);
    return;
  }
  if (existing) await stop(stateFile);
  if (!has('java')) throw new Unavailable('java is not installed: the registry cannot run');
  const jar = runnerJar();
  const port = await freePort();
  const dataDir = join(workDir, `registry-${process.pid}-${Date.now()}`);
  mkdirSync(dataDir, { recursive: true });
  const out = openSync(join(dataDir, 'stdout.log'), 'a');
  const child = spawn(
    'java',
    ['-Xms64m', '-Xmx384m', '-XX:+ExitOnOutOfMemoryError', `-Djava.io.tmpdir=${dataDir}`, `-Dquarkus.http.port=${port}`, '-Dquarkus.http.host=127.0.0.1',
      '-Dquarkus.http.access-log.enabled=false', '-jar', jar],
    { detached: true, stdio: ['ignore', out, out], cwd: dataDir },
  );
  child.unref();
  closeSync(out);
  const s = { stateFile, dataDir, port, pid: child.pid };
  saveState(stateFile, s);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await answers(port))) {
    if (!alive(s.pid) || Date.now() > deadline) {
      const why = alive(s.pid) ? `did not answer within ${READY_TIMEOUT_MS / 1000} s` : 'exited while starting';
      const tail = tailFiles(dataDir, ['stdout.log'], 20);
      await stop(stateFile);
      throw new Error(`the registry ${why}; its log:\n${tail}`);
    }
    await sleep(250);
  }
  log(`ready (pid ${s.pid}, port ${port})`);
  console.log(`SCHEMA_REGISTRY_URL=http://127.0.0.1:${port}/apis/ccompat/v7`);
}

async function stop(stateFile) {
  const s = readState(stateFile);
  if (!s) return;
  // The recorded pid is signalled only while its working folder is still ours.
  if (ours(s.pid, s.dataDir)) await terminate(s.pid, { timeoutMs: 15_000, log });
  if (s.dataDir?.startsWith(workDir)) rmSync(s.dataDir, { recursive: true, force: true });
  rmSync(stateFile, { force: true });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.command === 'start') return start(args.state);
  if (args.command === 'stop') return stop(args.state);
  throw new Error(`unknown command "${args.command}": use start or stop`);
}

runMain(main, { marker: 'SCHEMA_REGISTRY_UNAVAILABLE', log });
