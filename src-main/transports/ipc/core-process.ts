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
// The AMQP listener for apps: port 5672 unless BROKERDECK_AMQP_PORT says otherwise (0: a free one, off: none).
const amqpPortSetting = process.env.BROKERDECK_AMQP_PORT;
const amqpPort = amqpPortSetting === 'off' ? null : /^\d+$/.test(amqpPortSetting ?? '') && Number(amqpPortSetting) <= 65535 ? Number(amqpPortSetting) : 5672;
const core = await startCore({ dataDir, version: process.env.BROKERDECK_VERSION ?? '0.0.0', logger, listeners: { amqp: amqpPort === null ? false : { port: amqpPort, dataDir } } });

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
