/**
 * Kafka's own tools with SASL against the Kafka listener: kafka-configs
 * creates a SCRAM user (AlterUserScramCredentials: the tool salts the
 * password, the broker keeps the derived keys) and describes it; from then on
 * the listener asks for authentication, and the Java client authenticates
 * with SCRAM-SHA-256 and SCRAM-SHA-512 while a wrong password is refused.
 * Skipped, with the reason, where Java or the jars are missing.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKafkaScript, whyUnavailable } from '../../kafka/control.js';
import { startWireBroker, type WireBroker } from './helpers.js';

const java = ['/usr/bin/java', process.env.JAVA_HOME ? `${process.env.JAVA_HOME}/bin/java` : ''].find((p) => p && existsSync(p));
let classpath = '';
let unavailable = java ? '' : 'no java on this machine';
if (java) {
  const r = await runKafkaScript(['classpath'], 300_000);
  if (r.code === 0) classpath = r.stdout.trim().split('\n').pop()!;
  else unavailable = whyUnavailable(r);
}

let broker: WireBroker & { dir: string };
let dir = '';
beforeAll(async () => {
  if (unavailable) return;
  // A data folder of its own, so that kafka-users.json is written there.
  broker = await startWireBroker();
  dir = mkdtempSync(join(tmpdir(), 'bd-kafka-java-sasl-'));
});
afterAll(async () => {
  await broker?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function tool(main: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile(java!, ['-Xms64m', '-Xmx256m', '-XX:TieredStopAtLevel=1', '-Dlog4j2.level=WARN', '-cp', classpath, main, '--bootstrap-server', broker.bootstrap, ...args], { timeout: 90_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ stdout, stderr, code: error ? ((error as { code?: number }).code ?? 1) : 0 }),
    );
    child.stdin!.end();
  });
}

function clientConfig(name: string, mechanism: string, password: string): string {
  const file = join(dir, `${name}.properties`);
  writeFileSync(file, ['security.protocol=SASL_PLAINTEXT', `sasl.mechanism=${mechanism}`, `sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="ops" password="${password}";`, ''].join('\n'));
  return file;
}

const CONFIGS = 'kafka.admin.ConfigCommand';
const TOPICS = 'org.apache.kafka.tools.TopicCommand';

describe.skipIf(Boolean(unavailable))(`Kafka's Java tools with SASL against the Kafka listener${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  it('kafka-configs creates a SCRAM user; the Java client then authenticates with SCRAM, a wrong password is refused', async () => {
    broker.host.live().createTopic('guarded', { partitions: 1 });
    const created = await tool(CONFIGS, ['--alter', '--entity-type', 'users', '--entity-name', 'ops', '--add-config', 'SCRAM-SHA-256=[iterations=8192,password=ops-secret],SCRAM-SHA-512=[password=ops-secret]']);
    expect(created.code, created.stderr).toBe(0);
    const users = readFileSync(join(broker.dir, 'kafka-users.json'), 'utf8');
    expect(users).not.toContain('ops-secret');
    expect(JSON.parse(users).users[0].credentials['SCRAM-SHA-256'].iterations).toBe(8192);

    const right256 = clientConfig('right-256', 'SCRAM-SHA-256', 'ops-secret');
    const described = await tool(CONFIGS, ['--command-config', right256, '--describe', '--entity-type', 'users', '--entity-name', 'ops']);
    expect(described.code, described.stderr).toBe(0);
    expect(described.stdout).toMatch(/SCRAM-SHA-256=iterations=8192/);
    expect(described.stdout).toMatch(/SCRAM-SHA-512=iterations=4096/);

    for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-512']) {
      const listed = await tool(TOPICS, ['--command-config', clientConfig(`list-${mechanism}`, mechanism, 'ops-secret'), '--list']);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout.split('\n')).toContain('guarded');
    }
    const wrong = await tool(TOPICS, ['--command-config', clientConfig('wrong', 'SCRAM-SHA-256', 'not-it'), '--list']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout + wrong.stderr).toMatch(/SaslAuthenticationException/);
  }, 300_000);
});
