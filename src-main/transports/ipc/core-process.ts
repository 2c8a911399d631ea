/**
 * The core inside an Electron utility process. The main process hands over one
 * MessagePort per window; each port becomes a session of the same wire
 * protocol the WebSocket speaks. SQLite's synchronous calls block this process
 * only, never the windows or the main process.
 */
import { startCore } from '../../core/core.js';
import { consoleLogger } from '../../ground/logger.js';
import { openSession } from '../../core/session.js';

interface ParentPort {
  on(event: 'message', listener: (e: { data: unknown; ports: MessagePortLike[] }) => void): void;
  postMessage(message: unknown): void;
}
interface MessagePortLike {
  on(event: 'message', listener: (e: { data: unknown }) => void): void;
  on(event: 'close', listener: () => void): void;
  postMessage(message: unknown): void;
  start(): void;
}

const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort;
if (!parentPort) {
  process.stderr.write('core-process must be started by the Brokerdeck desktop app (Electron utilityProcess)\n');
  process.exit(2);
}

const dataDir = process.env.BROKERDECK_DATA_DIR;
if (!dataDir) {
  process.stderr.write('BROKERDECK_DATA_DIR is not set\n');
  process.exit(2);
}

const logger = consoleLogger();
/**
 * The wire listeners for apps: as saved in the Listener view, else AMQP on 5672 and Kafka on 9092;
 * BROKERDECK_AMQP_PORT and BROKERDECK_KAFKA_PORT win for this run (0: a free one, off: none).
 */
function portFromEnv(name: string): { port: number } | false | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  if (v === 'off') return false;
  if (/^\d+$/.test(v) && Number(v) <= 65535) return { port: Number(v) };
  process.stderr.write(`${name} must be a port (0 to 65535) or off; ignored\n`);
  return undefined;
}
const amqpEnv = portFromEnv('BROKERDECK_AMQP_PORT');
const kafkaEnv = portFromEnv('BROKERDECK_KAFKA_PORT');
const core = await startCore({
  dataDir,
  version: process.env.BROKERDECK_VERSION ?? '0.0.0',
  logger,
  listeners: { ...(amqpEnv !== undefined ? { amqp: amqpEnv && { ...amqpEnv, dataDir } } : {}), ...(kafkaEnv !== undefined ? { kafka: kafkaEnv } : {}) },
  listenerDefaults: { amqp: { port: 5672, dataDir }, kafka: { port: 9092 } },
});

parentPort.on('message', (event) => {
  const data = event.data as { type?: string } | null;
  if (data?.type === 'connect' && event.ports[0]) {
    const port = event.ports[0];
    const session = openSession(core, (frame) => port.postMessage(frame));
    port.on('message', (e) => session.receive(e.data));
    port.on('close', () => session.close());
    port.start();
  } else if (data?.type === 'shutdown') {
    void core.close().then(() => {
      parentPort.postMessage({ type: 'closed' });
      process.exit(0);
    });
  }
});
parentPort.postMessage({ type: 'ready' });
