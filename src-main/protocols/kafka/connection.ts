/**
 * One Kafka client connection. Framing (protocol.html, "Common Request and
 * Response Structure"):
 *
 *   Request  => Size(int32) RequestHeader Body
 *     RequestHeader v1 => api_key(int16) api_version(int16) correlation_id(int32) client_id(nullable string)
 *     RequestHeader v2 => v1 + tagged fields              (flexible versions of the API)
 *   Response => Size(int32) ResponseHeader Body
 *     ResponseHeader v0 => correlation_id(int32)
 *     ResponseHeader v1 => correlation_id + tagged fields (flexible versions; never for ApiVersions)
 *
 * Requests are handled one at a time, in order, and answered in that order,
 * as a Kafka broker does by muting a connection while a request is in
 * flight; a long-polling Fetch holds only its own connection. One exception:
 * while Produce requests wait for their commit (acks=all here means on
 * disk), the next request may start if it is a Produce too (up to
 * MAX_PIPELINED_PRODUCE), so that a producer with several requests in flight
 * gets them into one commit; their records are appended in the order the
 * requests came, and the answers still go out in that order. Bytes that are
 * not the protocol (a frame too large, a header or body that does not parse)
 * close this connection and are logged; nothing a client sends can reach the
 * process.
 */
import type net from 'node:net';
import type { Logger } from '../../ground/logger.js';
import type { ConnectionInfo, ProtocolConnection } from '../listener.js';
import { ProtocolError, Reader, Writer } from './codec/primitives.js';
import { API_SCHEMAS, type ApiSchema } from './generated/index.js';
import type { ClientDetails, ConnectionView, RequestHeader, ServerState } from './context.js';
import { saslStep } from './apis/sasl.js';
import { ERR } from './errors.js';
import { newSaslState, type SaslState } from './sasl.js';

/** Produce requests of one connection handled at once while earlier ones wait for their commit. */
export const MAX_PIPELINED_PRODUCE = 8;

/** Kafka's socket.request.max.bytes default. */
export const MAX_FRAME_BYTES = 100 * 1024 * 1024;

/** Reassembles size-prefixed frames from TCP chunks split anywhere. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrame = MAX_FRAME_BYTES) {}

  /** Adds bytes; returns the frames now complete (without their size prefix). */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.chunks[0]!.length >= 4 ? this.chunks[0]! : this.flatten();
      const size = head.readInt32BE(0);
      if (size <= 0 || size > this.maxFrame) throw new ProtocolError(`frame size ${size} is outside 1…${this.maxFrame}`);
      if (this.buffered < 4 + size) break;
      const all = this.flatten();
      frames.push(all.subarray(4, 4 + size));
      const rest = all.subarray(4 + size);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
    }
    return frames;
  }

  private flatten(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }
}

export function requestHeaderFlexible(schema: ApiSchema | undefined, version: number): boolean {
  return schema !== undefined && schema.firstFlexibleVersion >= 0 && version >= schema.firstFlexibleVersion;
}

/** Reads a request header; the reader is left at the body. */
export function readRequestHeader(r: Reader): { header: RequestHeader; schema: ApiSchema | undefined } {
  const apiKey = r.int16();
  const apiVersion = r.int16();
  const correlationId = r.int32();
  const clientId = r.nullableString();
  const schema = API_SCHEMAS.get(apiKey);
  if (requestHeaderFlexible(schema, apiVersion)) r.taggedFields(() => false);
  return { header: { apiKey, apiVersion, correlationId, clientId }, schema };
}

/** A whole response frame: size, header, body. */
export function responseFrame(apiKey: number, version: number, correlationId: number, writeBody: (w: Writer) => void): Buffer[] {
  // Record batches go out as they are, by reference: a fetch answer is not copied into the frame.
  const w = new Writer(256).keepLargeByReference();
  w.int32(0).int32(correlationId);
  const schema = API_SCHEMAS.get(apiKey);
  // ApiVersions answers with header v0 always, so that a client can read it whatever version it asked.
  if (apiKey !== 18 && requestHeaderFlexible(schema, version)) w.uvarint(0);
  writeBody(w);
  const out = w.chunks();
  out[0]!.writeInt32BE(w.totalLength - 4, 0);
  return out;
}

export class KafkaConnection implements ProtocolConnection, ConnectionView {
  readonly client: ClientDetails = { clientId: null, softwareName: null, softwareVersion: null };
  private readonly decoder = new FrameDecoder();
  private queue: Buffer[] = [];
  private busy = false;
  private closed = false;
  private closeAfter = false;
  readonly sasl: SaslState;
  /** The request being handled, for logs. */
  private current: RequestHeader | null = null;

  constructor(
    readonly socket: net.Socket,
    readonly info: ConnectionInfo,
    private readonly server: ServerState,
    private readonly logger: Logger,
  ) {
    this.sasl = newSaslState(server.users.required);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.queue = [];
    });
  }

  /** The address and port this client reached: Metadata advertises it back. */
  get localAddress(): { host: string; port: number } {
    const host = this.socket.localAddress ?? '127.0.0.1';
    return { host: host.startsWith('::ffff:') ? host.slice(7) : host, port: this.socket.localPort ?? 0 };
  }

  get isClosed(): boolean {
    return this.closed || this.socket.destroyed;
  }

  shutdown(): void {
    this.socket.end();
  }

  closeAfterResponse(): void {
    this.closeAfter = true;
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    try {
      for (const frame of this.decoder.push(chunk)) this.queue.push(frame);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    void this.drain();
  }

  /** A Produce request, from a client past authentication: one that may start beside earlier Produce requests. */
  private pipelinable(frame: Buffer): boolean {
    return frame.length >= 2 && frame.readInt16BE(0) === 0 && (this.sasl.stage === 'open' || this.sasl.stage === 'done');
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    // Requests started and not yet answered, oldest first: several only while all are Produce requests.
    const started: Array<Promise<Buffer[] | null>> = [];
    let allProduce = true;
    try {
      while (!this.closed && (this.queue.length > 0 || started.length > 0)) {
        const next = this.queue[0];
        if (next && (started.length === 0 || (allProduce && started.length < MAX_PIPELINED_PRODUCE && this.pipelinable(next)))) {
          this.queue.shift();
          if (started.length === 0) allProduce = true;
          allProduce &&= this.pipelinable(next);
          const answer = this.sasl.rawTokens && this.sasl.stage === 'authenticate' ? Promise.resolve(this.rawToken(next)) : this.handle(next);
          // Looked at in turn below; a failure meanwhile is not an unhandled rejection.
          answer.catch(() => undefined);
          started.push(answer);
          continue;
        }
        const out = await started.shift()!;
        if (out && !this.closed) {
          if (out.length === 1) this.socket.write(out[0]!);
          else {
            // One writev for the frame's pieces.
            this.socket.cork();
            for (const b of out) this.socket.write(b);
            this.socket.uncork();
          }
        }
        if (this.closeAfter && !this.closed) {
          this.closed = true;
          this.queue = [];
          this.socket.end();
        }
      }
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.busy = false;
    }
  }

  /**
   * Closes the connection after bytes that are not the protocol (a warning:
   * the client's fault) or a request the broker failed on (an error: ours).
   */
  private fail(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    const fields = { remote: this.info.remote, clientId: this.client.clientId, api: this.current ? `${this.current.apiKey} v${this.current.apiVersion}` : null, error: error.message };
    if (error instanceof ProtocolError) this.logger.warn('kafka connection closed: the client sent what is not the Kafka protocol', fields);
    else this.logger.error('kafka connection closed: a request failed', { ...fields, stack: error.stack });
    this.socket.destroy();
  }

  /** After SaslHandshake v0: a bare SASL token in, a bare token out; a failure closes the connection unanswered, as Kafka does. */
  private rawToken(frame: Buffer): Buffer[] | null {
    const r = saslStep(this.server, this, Buffer.from(frame));
    if ('failure' in r) {
      this.closeAfter = true;
      return null;
    }
    const out = Buffer.alloc(4 + r.reply.length);
    out.writeInt32BE(r.reply.length, 0);
    r.reply.copy(out, 4);
    return [out];
  }

  /** Handles one request frame; resolves with the response frame, or null when none is owed (acks=0). */
  private async handle(frame: Buffer): Promise<Buffer[] | null> {
    const r = new Reader(frame);
    this.current = null;
    const { header, schema } = readRequestHeader(r);
    this.current = header;
    this.client.clientId = header.clientId;
    // Until authenticated, a SASL listener takes ApiVersions and SaslHandshake, then SaslAuthenticate only (Kafka's SaslServerAuthenticator).
    if (this.sasl.stage === 'handshake' && header.apiKey !== 18 && header.apiKey !== 17) {
      throw new ProtocolError(`unexpected ${schema?.name ?? `API ${header.apiKey}`} request during SASL authentication`);
    }
    if (this.sasl.stage === 'authenticate' && header.apiKey !== 36) {
      // Kafka answers this one with ILLEGAL_SASL_STATE, then closes.
      this.logger.warn('kafka connection closed: a request came in the middle of SASL authentication', { remote: this.info.remote, api: schema?.name ?? header.apiKey });
      if (!schema) throw new ProtocolError(`unknown API key ${header.apiKey}`);
      const version = Math.min(header.apiVersion, schema.maxVersion);
      this.closeAfter = true;
      return responseFrame(header.apiKey, version, header.correlationId, (w) => schema.writeResponse(w, version, { errorCode: ERR.ILLEGAL_SASL_STATE }));
    }
    const served = this.server.served.get(header.apiKey);
    if (!schema || !served) {
      // An API this broker does not serve (not in ApiVersions): Kafka's UNSUPPORTED_VERSION where the response has room for it.
      this.logger.warn('kafka request for an API this broker does not serve', { apiKey: header.apiKey, name: schema?.name, clientId: header.clientId });
      if (!schema) throw new ProtocolError(`unknown API key ${header.apiKey}`);
      return responseFrame(header.apiKey, Math.min(header.apiVersion, schema.maxVersion), header.correlationId, (w) => schema.writeResponse(w, Math.min(header.apiVersion, schema.maxVersion), { errorCode: 35 }));
    }
    if (header.apiVersion < served.min || header.apiVersion > served.max) {
      if (header.apiKey === 18) {
        // Kafka answers an ApiVersions it cannot read with v0 and UNSUPPORTED_VERSION, listing what it serves.
        return responseFrame(18, 0, header.correlationId, (w) => schema.writeResponse(w, 0, { errorCode: 35, apiKeys: this.server.apiVersions() }));
      }
      throw new ProtocolError(`${schema.name} v${header.apiVersion} is not served (v${served.min}-${served.max})`);
    }
    const body = schema.readRequest(r, header.apiVersion);
    if (header.apiKey === 18) {
      this.client.softwareName = body.clientSoftwareName || null;
      this.client.softwareVersion = body.clientSoftwareVersion || null;
    }
    const response = await served.handle({ server: this.server, connection: this, version: header.apiVersion, header }, body);
    if (response === null) return null;
    return responseFrame(header.apiKey, header.apiVersion, header.correlationId, (w) => schema.writeResponse(w, header.apiVersion, response));
  }
}
