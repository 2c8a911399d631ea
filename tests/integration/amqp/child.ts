/** The embedded broker with its AMQP listener in a child process (see fixtures/amqp-broker-child.ts). */
import { spawn, type ChildProcess } from 'node:child_process';
import { bundleFixture, childEnv } from '../fixtures/child-process.js';

export interface ChildBroker {
  child: ChildProcess;
  port: number;
  url: string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

export async function bundleBrokerChild(outDir: string): Promise<string> {
  return bundleFixture('amqp-broker-child', outDir);
}

export function startChildBroker(bundle: string, dataDir: string): Promise<ChildBroker> {
  const child = spawn(process.execPath, [bundle, dataDir], { env: childEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]), url: `amqp://guest:guest@127.0.0.1:${m[1]}`, exited });
    });
    child.once('exit', (code) => reject(new Error(`the broker process exited (${code}) before listening`)));
  });
}
