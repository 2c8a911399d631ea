/**
 * A bare AMQP client for tests that must send what no client library would:
 * malformed frames, silence instead of heartbeats, frames on unopened
 * channels. It writes with the listener's own frame writer and reads every
 * frame the server sends.
 */
import net from 'node:net';
import { FrameParser, FrameWriter, PROTOCOL_HEADER, type Frame } from '../../../src-main/protocols/amqp/frame.js';
import { decodeMethod, type MethodInput, type MethodName } from '../../../src-main/protocols/amqp/generated/spec.js';

export interface ServerClose {
  replyCode: number;
  replyText: string;
  classId: number;
  methodId: number;
}

export class RawClient {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  readonly raw: Buffer[] = [];
  closed = false;
  private readonly parser = new FrameParser(1 << 20);
  private headerSeen = false;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (b: Buffer) => {
      this.raw.push(b);
      if (!this.headerSeen && b.length >= 8 && b.subarray(0, 4).toString() === 'AMQP') {
        this.headerSeen = true;
        return this.wake();
      }
      try {
        this.parser.push(b);
        for (let f = this.parser.next(); f; f = this.parser.next()) this.frames.push({ ...f, payload: Buffer.from(f.payload) });
      } catch {
        // Tests only look at what could be read.
      }
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when `test` holds (checked after each read and on close). */
  until<T>(test: () => T | undefined | false): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = test();
        if (v) return resolve(v);
        if (this.closed) return reject(new Error('socket closed before the condition held'));
        this.waiters.push(check);
      };
      check();
    });
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  send<N extends MethodName>(channel: number, name: N, args: MethodInput<N>): void {
    const w = new FrameWriter();
    w.method(channel, name, args);
    this.write(w.take());
  }

  methods(): Array<{ channel: number; name: string | null; args: Record<string, unknown> }> {
    return this.frames
      .filter((f) => f.type === 1)
      .map((f) => {
        const m = decodeMethod(f.payload);
        return { channel: f.channel, name: m.name, args: ('args' in m ? m.args : {}) as Record<string, unknown> };
      });
  }

  method(name: string, channel = 0): Promise<Record<string, unknown>> {
    return this.until(() => this.methods().find((m) => m.name === name && m.channel === channel)?.args);
  }

  /** The connection.close the server sent. */
  async connectionClose(): Promise<ServerClose> {
    return (await this.method('connection.close')) as unknown as ServerClose;
  }

  /** Protocol header, start-ok (PLAIN), tune-ok, and (unless vhost is null) connection.open. */
  async handshake(options: { user?: string; password?: string; vhost?: string | null; heartbeat?: number; frameMax?: number; capabilities?: Record<string, unknown> } = {}): Promise<void> {
    this.write(PROTOCOL_HEADER);
    await this.method('connection.start');
    this.send(0, 'connection.start-ok', {
      clientProperties: { product: 'raw-test', capabilities: options.capabilities ?? { authentication_failure_close: true } },
      mechanism: 'PLAIN',
      response: Buffer.from(`\0${options.user ?? 'guest'}\0${options.password ?? 'guest'}`),
    });
    const tune = await this.until(() => this.methods().find((m) => m.name === 'connection.tune' || m.name === 'connection.close'));
    if (tune.name === 'connection.close') return;
    this.send(0, 'connection.tune-ok', { channelMax: 2047, frameMax: options.frameMax ?? 131072, heartbeat: options.heartbeat ?? 0 });
    if (options.vhost === null) return;
    this.send(0, 'connection.open', { virtualHost: options.vhost ?? '/' });
    await this.until(() => this.methods().find((m) => m.name === 'connection.open-ok' || m.name === 'connection.close'));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A frame written by hand: type, channel, payload and the end octet (0xCE unless told). */
export function frame(type: number, channel: number, payload: Buffer, end = 0xce): Buffer {
  const head = Buffer.alloc(7);
  head[0] = type;
  head.writeUInt16BE(channel, 1);
  head.writeUInt32BE(payload.length, 3);
  return Buffer.concat([head, payload, Buffer.from([end])]);
}
