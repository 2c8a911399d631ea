/**
 * The little of Kafka's wire protocol the server scripts need to tell that a
 * broker is up, and Kafka's cluster ids: shared by kafka.mjs and the cluster script.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** One request on a fresh socket: `[size][apiKey][apiVersion][correlationId][clientId][body]`. */
export function request(port, apiKey, apiVersion, body, timeoutMs = 2_000) {
  return new Promise((resolve, reject) => {
    const clientId = Buffer.from('brokerdeck-tests');
    const header = Buffer.alloc(10);
    header.writeInt16BE(apiKey, 0);
    header.writeInt16BE(apiVersion, 2);
    header.writeInt32BE(7, 4);
    header.writeInt16BE(clientId.length, 8);
    const payload = Buffer.concat([header, clientId, body]);
    const size = Buffer.alloc(4);
    size.writeInt32BE(payload.length);
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(new Error('timed out')), timeoutMs);
    socket.on('connect', () => socket.write(Buffer.concat([size, payload])));
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      if (data.length >= 4 && data.length >= 4 + data.readInt32BE(0)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data.subarray(4, 4 + data.readInt32BE(0)));
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error('connection closed'));
    });
  });
}

/**
 * How many brokers the broker on `port` lists in its metadata (ApiVersions must answer
 * without error first; Metadata v1: correlation id, then the broker array); 0 when it
 * does not answer.
 */
export async function brokersSeen(port) {
  try {
    const versions = await request(port, 18, 0, Buffer.alloc(0));
    if (versions.readInt16BE(4) !== 0) return 0;
    const topicsNull = Buffer.alloc(4);
    topicsNull.writeInt32BE(-1);
    const metadata = await request(port, 3, 1, topicsNull);
    return metadata.readInt32BE(4);
  } catch {
    return 0;
  }
}

/**
 * Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding. As in Kafka's
 * own `Uuid.randomUuid()`, one starting with '-' is drawn again: the storage tool would read
 * it as an option and refuse to format (about one start in 64).
 */
export function clusterId() {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}
