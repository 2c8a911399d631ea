/**
 * A broker host on a temporary data folder with the Kafka listener on a free
 * loopback port, for tests that drive it with real Kafka clients.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrokerHost } from '../../../src-main/broker/host.js';
import type { Logger } from '../../../src-main/ground/logger.js';
import { createKafkaListener, type KafkaListenerConfig } from '../../../src-main/protocols/kafka/server.js';
import { KafkaUserStore } from '../../../src-main/protocols/kafka/users.js';

export interface WireBroker {
  host: BrokerHost;
  port: number;
  bootstrap: string;
  logs: Array<{ level: string; message: string; fields?: Record<string, unknown> }>;
  stop(): Promise<void>;
}

/** `users`: name → password, written to kafka-users.json before the listener starts (it then asks for SASL). */
export async function startWireBroker(config: Partial<KafkaListenerConfig> = {}, users: Record<string, string> = {}): Promise<WireBroker & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'bd-kafka-wire-'));
  const store = new KafkaUserStore(dir);
  for (const [name, password] of Object.entries(users)) store.putUser(name, password);
  config = { dataDir: dir, ...config };
  const logs: WireBroker['logs'] = [];
  const logger: Logger = {
    info: (message, fields) => logs.push({ level: 'info', message, fields }),
    warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
    error: (message, fields) => logs.push({ level: 'error', message, fields }),
  };
  const host = BrokerHost.open({ dataDir: dir, logger });
  const listener = createKafkaListener(host, { port: 0, ...config }, logger);
  const port = await listener.listen();
  return {
    dir,
    host,
    port,
    bootstrap: `127.0.0.1:${port}`,
    logs,
    async stop() {
      await listener.close(1000);
      host.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
