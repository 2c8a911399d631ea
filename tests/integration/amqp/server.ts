/**
 * The embedded broker with its AMQP listener on a free loopback port, for
 * tests that drive it with real clients. Stops by itself at the end of the
 * test file (the caller's afterAll).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrokerHost } from '../../../src-main/broker/host.js';
import { silentLogger, type Logger } from '../../../src-main/ground/logger.js';
import { createAmqpListener, type AmqpListenerConfig } from '../../../src-main/protocols/amqp/server.js';

export interface TestBroker {
  host: BrokerHost;
  listener: ReturnType<typeof createAmqpListener>;
  port: number;
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startBroker(config: Partial<AmqpListenerConfig> = {}, logger: Logger = silentLogger): Promise<TestBroker> {
  const dataDir = mkdtempSync(join(tmpdir(), 'brokerdeck-amqp-'));
  const host = BrokerHost.open({ dataDir, logger: silentLogger, diskFreeLimit: 0 });
  const listener = createAmqpListener(host, { port: 0, host: '127.0.0.1', dataDir, ...config }, logger);
  const port = await listener.listen();
  return {
    host,
    listener,
    port,
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    dataDir,
    async stop() {
      await listener.close(1000);
      host.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
