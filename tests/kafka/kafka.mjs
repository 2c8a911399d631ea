#!/usr/bin/env node
/**
 * A real single-node Apache Kafka (KRaft: broker and controller in one JVM)
 * for the tests and for people trying Brokerdeck against Kafka.
 *
 *   node tests/kafka/kafka.mjs start    resolve the jars (Maven, cached), format a fresh log
 *                                       directory, start the broker, wait until it answers
 *                                       requests, print KAFKA_BROKERS=127.0.0.1:<port> last
 *   node tests/kafka/kafka.mjs stop     stop it and remove its data
 *   node tests/kafka/kafka.mjs halt     stop the process but keep its data and ports
 *   node tests/kafka/kafka.mjs resume   start a halted broker again on the same data and ports
 *   node tests/kafka/kafka.mjs status   print the state (exit 1 when none is running)
 *   node tests/kafka/kafka.mjs classpath  print the resolved classpath
 *
 * `--state <file>` (or KAFKA_STATE_FILE) names the state file, so several brokers can
 * run side by side (the test helper uses its own); the default lives in os.tmpdir().
 *
 * Besides PLAINTEXT the broker listens with SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256,
 * SCRAM-SHA-512; one user whose credentials are printed) and SSL (a self-signed
 * certificate whose PEM file is printed), all on 127.0.0.1 and on free ports.
 *
 * Exit codes: 0 done; 3 a prerequisite is missing (java, mvn, keytool, the jars), with a
 * KAFKA_UNAVAILABLE=<reason> line; 1 anything else.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, freePort, has, logger, mavenClasspath, readState, run, runMain, sleep, tailFiles, terminate, Unavailable } from '../servers/kit.mjs';
import { brokersSeen, clusterId } from './wire.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const pom = join(here, 'pom.xml');
const workDir = join(os.tmpdir(), 'brokerdeck-kafka');
const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 15_000;
const HEAP = process.env.KAFKA_HEAP_OPTS ?? '-Xms128m -Xmx512m';
const log = logger('kafka');

function parseArgs(argv) {
  const args = { command: argv[0] ?? 'start', state: process.env.KAFKA_STATE_FILE ?? join(workDir, 'broker.json') };
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '--state') args.state = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

function serverProperties(s) {
  const plainUsers = `user_${s.username}="${s.password}"`;
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${s.ports.controller}`,
    `listeners=PLAINTEXT://127.0.0.1:${s.ports.plain},SASL_PLAINTEXT://127.0.0.1:${s.ports.sasl},SSL://127.0.0.1:${s.ports.ssl},CONTROLLER://127.0.0.1:${s.ports.controller}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${s.ports.plain},SASL_PLAINTEXT://127.0.0.1:${s.ports.sasl},SSL://127.0.0.1:${s.ports.ssl}`,
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    `log.dirs=${join(s.dataDir, 'logs')}`,
    // SASL: PLAIN users come from the JAAS line; SCRAM users were written into the log at format time.
    'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
    `listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${plainUsers};`,
    'listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    `listener.name.ssl.ssl.keystore.location=${join(s.dataDir, 'broker.p12')}`,
    'listener.name.ssl.ssl.keystore.type=PKCS12',
    `listener.name.ssl.ssl.keystore.password=${s.keystorePassword}`,
    `listener.name.ssl.ssl.key.password=${s.keystorePassword}`,
    // One node: every internal topic has one replica; fewer partitions make the first group join fast.
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=5',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=5',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'min.insync.replicas=1',
    'group.initial.rebalance.delay.ms=0',
    'num.partitions=1',
    'auto.create.topics.enable=true',
    'delete.topic.enable=true',
    // A 2-core machine: few threads.
    'num.network.threads=2',
    'num.io.threads=4',
    'background.threads=2',
    'num.recovery.threads.per.data.dir=1',
    'log.cleaner.threads=1',
    '',
  ].join('\n');
}

function log4jProperties(dataDir) {
  return [
    'status = warn',
    'appender.file.type = File',
    'appender.file.name = FILE',
    `appender.file.fileName = ${join(dataDir, 'server.log')}`,
    'appender.file.layout.type = PatternLayout',
    'appender.file.layout.pattern = [%d] %p %m (%c)%n',
    'rootLogger.level = INFO',
    'rootLogger.appenderRef.file.ref = FILE',
    'logger.state.name = state.change.logger',
    'logger.state.level = WARN',
    '',
  ].join('\n');
}

/** A self-signed certificate for 127.0.0.1/localhost; its PEM is what a client trusts. */
function makeCertificate(s) {
  const keystore = join(s.dataDir, 'broker.p12');
  run(
    'keytool',
    ['-genkeypair', '-alias', 'broker', '-keyalg', 'RSA', '-keysize', '2048', '-validity', '30', '-dname', 'CN=localhost',
      '-ext', 'SAN=IP:127.0.0.1,DNS:localhost', '-storetype', 'PKCS12', '-keystore', keystore,
      '-storepass', s.keystorePassword, '-keypass', s.keystorePassword],
    'keytool -genkeypair',
  );
  const pem = run('keytool', ['-exportcert', '-rfc', '-alias', 'broker', '-keystore', keystore, '-storepass', s.keystorePassword], 'keytool -exportcert');
  writeFileSync(s.caFile, pem);
}

function javaArgs(s, cp, mainClass, rest) {
  return [...HEAP.split(/\s+/).filter(Boolean), '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${join(s.dataDir, 'log4j2.properties')}`, '-cp', cp, mainClass, ...rest];
}

function format(s, cp) {
  const scram = (mech) => `${mech}=[name=${s.username},password=${s.password}]`;
  run(
    'java',
    javaArgs(s, cp, 'kafka.tools.StorageTool', ['format', '-t', s.clusterId, '-c', s.configFile,
      '--add-scram', scram('SCRAM-SHA-256'), '--add-scram', scram('SCRAM-SHA-512')]),
    'formatting the log directory (kafka.tools.StorageTool format)',
  );
}

function launch(s, cp) {
  const out = openSync(join(s.dataDir, 'stdout.log'), 'a');
  const child = spawn('java', javaArgs(s, cp, 'kafka.Kafka', [s.configFile]), { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  closeSync(out);
  return child.pid;
}

/** Maven resolves the broker's jars once; the classpath is cached per pom.xml content. */
function classpath() {
  return mavenClasspath({ pom, cacheDir: workDir, what: 'Kafka', log });
}

/** Ready means: ApiVersions answers without error and Metadata lists this broker. */
async function answers(port) {
  return (await brokersSeen(port)) > 0;
}

async function waitReady(s) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!alive(s.pid)) throw new Error(`the broker exited while starting; its log:\n${tailFiles(s.dataDir, ['stdout.log', 'server.log'], 20)}`);
    if (await answers(s.ports.plain)) return;
    await sleep(250);
  }
  throw new Error(`the broker did not answer within ${READY_TIMEOUT_MS / 1000} s; its log:\n${tailFiles(s.dataDir, ['stdout.log', 'server.log'], 20)}`);
}

function printState(s) {
  console.log(`KAFKA_STATE_FILE=${s.stateFile}`);
  console.log(`KAFKA_DATA_DIR=${s.dataDir}`);
  console.log(`KAFKA_PID=${s.pid}`);
  console.log(`KAFKA_SASL_BROKERS=127.0.0.1:${s.ports.sasl}`);
  console.log(`KAFKA_SASL_USERNAME=${s.username}`);
  console.log(`KAFKA_SASL_PASSWORD=${s.password}`);
  console.log(`KAFKA_SSL_BROKERS=127.0.0.1:${s.ports.ssl}`);
  console.log(`KAFKA_SSL_CA=${s.caFile}`);
  console.log(`KAFKA_BROKERS=127.0.0.1:${s.ports.plain}`);
}

async function start(stateFile) {
  const existing = readState(stateFile);
  if (existing && alive(existing.pid) && (await answers(existing.ports.plain))) {
    log(`already running (pid ${existing.pid})`);
    printState(existing);
    return;
  }
  if (existing) cleanup(existing);
  if (!has('java')) throw new Unavailable('java is not installed: the broker cannot run');
  if (!has('keytool')) throw new Unavailable('keytool (from the JDK/JRE) is not installed: the TLS listener cannot get a certificate');
  const cp = classpath();
  const [plain, sasl, ssl, controller] = [await freePort(), await freePort(), await freePort(), await freePort()];
  mkdirSync(workDir, { recursive: true });
  const dataDir = join(workDir, `broker-${process.pid}-${Date.now()}`);
  mkdirSync(dataDir, { recursive: true });
  const s = {
    stateFile,
    dataDir,
    configFile: join(dataDir, 'server.properties'),
    caFile: join(dataDir, 'ca.pem'),
    clusterId: clusterId(),
    ports: { plain, sasl, ssl, controller },
    username: 'brokerdeck',
    password: randomBytes(12).toString('hex'),
    keystorePassword: randomBytes(12).toString('hex'),
    pid: 0,
  };
  try {
    writeFileSync(join(dataDir, 'log4j2.properties'), log4jProperties(dataDir));
    writeFileSync(s.configFile, serverProperties(s));
    makeCertificate(s);
    log('formatting a fresh log directory…');
    format(s, cp);
    log(`starting the broker on 127.0.0.1:${plain}…`);
    s.pid = launch(s, cp);
    mkdirSync(dirname(stateFile), { recursive: true });
    writeFileSync(stateFile, JSON.stringify(s, null, 2));
    await waitReady(s);
  } catch (error) {
    cleanup(s);
    throw error;
  }
  log(`ready (pid ${s.pid}, data in ${dataDir})`);
  printState(s);
}

function cleanup(s) {
  if (s.pid && alive(s.pid)) {
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  if (s.dataDir && s.dataDir.startsWith(workDir)) rmSync(s.dataDir, { recursive: true, force: true });
  if (s.stateFile) rmSync(s.stateFile, { force: true });
}

async function stop(stateFile) {
  const s = readState(stateFile);
  if (!s) {
    log('no broker is recorded in ' + stateFile);
    return;
  }
  await terminate(s.pid, { timeoutMs: STOP_TIMEOUT_MS, log });
  cleanup(s);
  log(`stopped and removed ${s.dataDir}`);
}

async function halt(stateFile) {
  const s = readState(stateFile);
  if (!s) throw new Error('no broker is recorded in ' + stateFile);
  await terminate(s.pid, { timeoutMs: STOP_TIMEOUT_MS, log });
  log(`halted pid ${s.pid}; data kept in ${s.dataDir}`);
}

async function resume(stateFile) {
  const s = readState(stateFile);
  if (!s) throw new Error('no broker is recorded in ' + stateFile);
  if (alive(s.pid)) throw new Error(`pid ${s.pid} is still running`);
  const cp = classpath();
  s.pid = launch(s, cp);
  writeFileSync(stateFile, JSON.stringify(s, null, 2));
  await waitReady(s);
  log(`resumed (pid ${s.pid})`);
  printState(s);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  switch (args.command) {
    case 'start':
      return start(args.state);
    case 'stop':
      return stop(args.state);
    case 'halt':
      return halt(args.state);
    case 'resume':
      return resume(args.state);
    case 'classpath':
      console.log(classpath());
      return;
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
      throw new Error(`unknown command "${args.command}": use start, stop, halt, resume, status or classpath`);
  }
}

runMain(main, { marker: 'KAFKA_UNAVAILABLE', log });
