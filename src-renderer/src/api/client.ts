/**
 * The renderer's only way to the core. In the desktop app it uses the object
 * the preload exposes (`window.brokerdeck`, over a MessagePort); in a browser
 * it speaks the same frames over a WebSocket to headless mode. Both are typed
 * from the contract, so a wrong operation name or input is a compile error.
 */
import type { Input, OperationName, Output } from '@contract/operations';
import type { StreamEvent, StreamName, StreamParams } from '@contract/events';
import type { ApiErrorBody } from '@contract/errors';
import type { ClientFrame, CoreFrame } from '@contract/wire';

export type ErrorInfo = ApiErrorBody['error'];

/** An error from the core, with the code and the field at fault. */
export class ClientError extends Error {
  readonly code: string;
  readonly field: string | undefined;
  constructor(info: ErrorInfo) {
    super(info.message);
    this.code = info.code;
    this.field = info.field;
  }
}

interface Bridge {
  call(op: string, input: unknown): Promise<unknown>;
  /** `onError` is told when the core refuses the subscription (bridges that cannot tell ignore it). */
  subscribe(stream: string, params: unknown, listener: (data: unknown) => void, onError?: (error: ErrorInfo) => void): () => void;
}

/** What `public/boot.js` started before the app loaded: a socket, what it received, its one subscription. */
interface Boot {
  ws: WebSocket;
  received: unknown[];
  sub: Extract<ClientFrame, { t: 'sub' }>;
}

declare global {
  interface Window {
    brokerdeck?: Bridge;
    __brokerdeckBoot?: Boot;
  }
}

/** How long the boot script's subscription waits for the app to claim it before it is dropped. */
const BOOT_CLAIM_MS = 5000;

/** `{ t: 'event', id, data }` from a binary frame: a 32-bit id, then the data's JSON, deflate-raw compressed. */
async function decodeBinary(buffer: ArrayBuffer): Promise<CoreFrame> {
  const id = new DataView(buffer).getUint32(0);
  const stream = new Blob([buffer.slice(4)]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  const data: unknown = JSON.parse(await new Response(stream).text());
  return { t: 'event', id, data };
}

/** WebSocket bridge with reconnection; subscriptions are renewed after a reconnect. */
function webSocketBridge(url: string): Bridge {
  let ws: WebSocket | null = null;
  let open = false;
  let nextId = 1;
  let retryMs = 250;
  const outbox: ClientFrame[] = [];
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void; frame: ClientFrame }>();
  const subs = new Map<number, { frame: ClientFrame; listener: (d: unknown) => void; onError: ((e: ErrorInfo) => void) | undefined }>();

  const send = (frame: ClientFrame) => {
    if (ws && open) ws.send(JSON.stringify(frame));
    else outbox.push(frame);
  };

  // The boot script's subscription (id 0) until a matching subscribe() claims it: the
  // latest event is kept for the claimant, so the first sample may be here before the app is.
  let unclaimed: { frame: Extract<ClientFrame, { t: 'sub' }>; latest: unknown; has: boolean } | null = null;

  const adoptBoot = (boot: Boot) => {
    const socket = boot.ws;
    if (socket.readyState !== WebSocket.CONNECTING && socket.readyState !== WebSocket.OPEN) return null;
    const claim = { frame: boot.sub, latest: undefined as unknown, has: false };
    unclaimed = claim;
    subs.set(boot.sub.id, {
      frame: boot.sub,
      listener: (data) => {
        claim.latest = data;
        claim.has = true;
      },
      onError: undefined,
    });
    setTimeout(() => {
      if (unclaimed !== claim) return;
      unclaimed = null;
      subs.delete(claim.frame.id);
      send({ t: 'unsub', id: claim.frame.id });
    }, BOOT_CLAIM_MS);
    return socket;
  };

  const connect = () => {
    const boot = window.__brokerdeckBoot;
    window.__brokerdeckBoot = undefined;
    const adopted = boot ? adoptBoot(boot) : null;
    ws = adopted ?? new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      open = true;
      retryMs = 250;
      for (const s of subs.values()) ws!.send(JSON.stringify(s.frame));
      for (const f of outbox.splice(0)) ws!.send(JSON.stringify(f));
    };
    ws.onmessage = (e) => receive(e.data);
    ws.onclose = onClose;
    if (adopted) {
      // Already open: the boot script sent its subscription; nothing else was queued yet.
      if (adopted.readyState === WebSocket.OPEN) open = true;
      for (const data of boot!.received.splice(0)) receive(data);
    }
  };

  /**
   * Frames in the order they came. A binary frame (a large event, compressed once by
   * the server: layout in contract/wire.ts) is decoded asynchronously, so frames behind
   * it wait for it.
   */
  let pendingFrames: Promise<void> | null = null;
  function receive(raw: unknown) {
    const run = (): void | Promise<void> =>
      typeof raw === 'string' ? handle(JSON.parse(raw) as CoreFrame) : decodeBinary(raw as ArrayBuffer).then(handle);
    const result = pendingFrames ? pendingFrames.then(run) : run();
    if (!result) return;
    const mine: Promise<void> = result
      .catch((error: unknown) => console.error('a message from Brokerdeck could not be read', error))
      .then(() => {
        if (pendingFrames === mine) pendingFrames = null;
      });
    pendingFrames = mine;
  }

  function handle(frame: CoreFrame) {
    if (frame.t === 'event') {
      subs.get(frame.id)?.listener(frame.data);
      return;
    }
    const p = pending.get(frame.id);
    if (!p) {
      // A result for a subscription id is the core refusing it.
      const sub = subs.get(frame.id);
      if (sub && !frame.ok) {
        subs.delete(frame.id);
        if (unclaimed?.frame.id === frame.id) unclaimed = null;
        sub.onError?.(frame.error);
      }
      return;
    }
    pending.delete(frame.id);
    if (frame.ok) p.resolve(frame.value);
    else p.reject(frame.error);
  }

  function onClose() {
    open = false;
    // Calls in flight on a dead socket are failed, not silently retried: the
    // user sees the error and decides (a publish must not run twice).
    for (const [id, p] of pending) {
      if (p.frame.t === 'call') {
        pending.delete(id);
        p.reject({ code: 'UNAVAILABLE', message: 'the connection to Brokerdeck was lost; try again' });
      }
    }
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  }
  connect();

  return {
    call(op, input) {
      const frame: ClientFrame = { t: 'call', id: nextId++, op, input };
      return new Promise((resolve, reject) => {
        pending.set(frame.id, { resolve, reject, frame });
        send(frame);
      });
    },
    subscribe(stream, params, listener, onError) {
      // The boot script's subscription, when it asked for the same thing, is taken over
      // (with what it already received) instead of asking again.
      const early = unclaimed && unclaimed.frame.stream === stream && JSON.stringify(unclaimed.frame.params) === JSON.stringify(params) ? unclaimed : null;
      const frame: ClientFrame = early?.frame ?? { t: 'sub', id: nextId++, stream, params };
      subs.set(frame.id, { frame, listener, onError });
      if (!early) send(frame);
      else {
        unclaimed = null;
        if (early.has) queueMicrotask(() => subs.get(frame.id)?.listener(early.latest));
      }
      return () => {
        subs.delete(frame.id);
        send({ t: 'unsub', id: frame.id });
      };
    },
  };
}

let bridge: Bridge | null = null;
function getBridge(): Bridge {
  if (!bridge) {
    if (window.brokerdeck) bridge = window.brokerdeck;
    else {
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      bridge = webSocketBridge(`${scheme}://${location.host}/api/ws`);
    }
  }
  return bridge;
}

export const api = {
  async call<N extends OperationName>(op: N, input: Input<N>): Promise<Output<N>> {
    input = unscope(input);
    try {
      return (await getBridge().call(op, input)) as Output<N>;
    } catch (error) {
      if (error && typeof error === 'object' && 'code' in error && 'message' in error) throw new ClientError(error as ErrorInfo);
      throw error;
    }
  },
  subscribe<S extends StreamName>(
    stream: S,
    params: StreamParams<S>,
    listener: (event: StreamEvent<S>) => void,
    onError?: (error: ClientError) => void,
  ): () => void {
    return getBridge().subscribe(stream, unscope(params), listener as (d: unknown) => void, onError ? (e) => onError(new ClientError(e)) : undefined);
  },
  /** Opens the channel to the core now, so its handshake overlaps the app's first render. */
  connect(): void {
    getBridge();
  },
  get mode(): 'desktop' | 'web' {
    return window.brokerdeck ? 'desktop' : 'web';
  },
};

/**
 * The renderer keys a connection's virtual host into its id (`id` + NUL + `vhost`,
 * see stores/connections): here it becomes the operation's `connectionId` and `vhost`.
 */
function unscope<T>(input: T): T {
  const id = (input as { connectionId?: unknown } | null)?.connectionId;
  if (typeof id !== 'string') return input;
  const i = id.indexOf('\u0000');
  if (i < 0) return input;
  return { ...input, connectionId: id.slice(0, i), vhost: id.slice(i + 1) };
}

/** A message a person can act on, from anything a call may throw. */
export function describeError(error: unknown): string {
  if (error instanceof ClientError) return error.field ? `${error.message} (${error.field})` : error.message;
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
