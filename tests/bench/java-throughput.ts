/**
 * The Java client's throughput run (java/AmqpThroughput.java, in the manner of
 * RabbitMQ's PerfTest: one producer with confirms, one consumer with acks,
 * persistent messages) against any AMQP URL. RabbitMQ's PerfTest itself is
 * not served by the Maven repository here, so the same workload is written on
 * the official Java client, `com.rabbitmq:amqp-client`, fetched through Maven.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const JARS = ['com.rabbitmq:amqp-client:5.37.1', 'org.slf4j:slf4j-api:1.7.36'];

function jarOf(coords: string): string {
  const [g, a, v] = coords.split(':') as [string, string, string];
  return join(homedir(), '.m2', 'repository', ...g.split('.'), a, v, `${a}-${v}.jar`);
}

export interface JavaThroughput {
  /** Messages per second, from the first publish to the last delivery. */
  run(url: string, count: number, size: number, window: number): Promise<number>;
}

/** Compiles the run into `outDir`; the reason it cannot (no Java, no Maven, no jar) as a string. */
export function prepareJavaThroughput(outDir: string): JavaThroughput | string {
  for (const tool of ['java', 'javac', 'mvn']) {
    if (spawnSync(tool, ['-version'], { stdio: 'ignore' }).error) return `${tool} is not installed`;
  }
  for (const coords of JARS) {
    if (existsSync(jarOf(coords))) continue;
    spawnSync('mvn', ['-q', '-B', 'dependency:get', `-Dartifact=${coords}`, '-Dtransitive=false'], { encoding: 'utf8', timeout: 300_000 });
    if (!existsSync(jarOf(coords))) return `Maven could not fetch ${coords}`;
  }
  const classpath = [outDir, ...JARS.map(jarOf)].join(':');
  execFileSync('javac', ['-cp', classpath, '-d', outDir, join(import.meta.dirname, 'java', 'AmqpThroughput.java')], { stdio: 'pipe' });
  return {
    run: (url, count, size, window) =>
      new Promise((resolve, reject) => {
        const child = spawn('java', ['-cp', classpath, 'AmqpThroughput', url, String(count), String(size), String(window)], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString()));
        child.stderr.on('data', (b: Buffer) => (out += b.toString()));
        child.on('error', reject);
        child.on('exit', (code) => {
          const m = /RATE (\d+)/.exec(out);
          if (code === 0 && m) resolve(Number(m[1]));
          else reject(new Error(`the Java throughput run exited with ${code}: ${out.trim().split('\n').slice(-3).join(' | ')}`));
        });
      }),
  };
}
