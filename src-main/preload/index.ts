/// <reference lib="dom" />
/**
 * The only bridge between the page and the app. It exposes one frozen object,
 * `window.brokerdeck`, with `call` and `subscribe`; the page never sees
 * `ipcRenderer`, an IPC event or the port. Inputs are validated against the
 * contract here, and again by the core, which trusts no port.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { ApiError } from '../contract/errors.js';
import { isOperationName, operations } from '../contract/operations.js';
import { isStreamName, streams } from '../contract/events.js';
import { parseInput } from '../contract/validate.js';
import type { ClientFrame, CoreFrame } from '../contract/wire.js';

let port: MessagePort | null = null;
const queue: ClientFrame[] = [];
let nextId = 1;
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
const listeners = new Map<number, (data: unknown) => void>();

function send(frame: ClientFrame) {
  if (port) port.postMessage(frame);
  else queue.push(frame);
}

ipcRenderer.on('brokerdeck:port', (event) => {
  const [received] = event.ports;
  if (!received) return;
  port = received;
  port.onmessage = (e: MessageEvent<CoreFrame>) => {
    const frame = e.data;
    if (frame.t === 'event') {
      listeners.get(frame.id)?.(frame.data);
      return;
    }
    const p = pending.get(frame.id);
    if (!p) return;
    pending.delete(frame.id);
    if (frame.ok) p.resolve(frame.value);
    else p.reject(frame.error);
  };
  port.start();
  for (const frame of queue.splice(0)) port.postMessage(frame);
});

function request(frame: ClientFrame): Promise<unknown> {
  return new Promise((resolve, reject) => {
    pending.set(frame.id, { resolve, reject });
    send(frame);
  });
}

const api = Object.freeze({
  platform: process.platform,
  call(op: string, input: unknown): Promise<unknown> {
    if (!isOperationName(op)) return Promise.reject(new ApiError('NOT_FOUND', `unknown operation "${op}"`, 'op').toBody().error);
    try {
      parseInput(operations[op].input, input);
    } catch (error) {
      return Promise.reject((error as ApiError).toBody().error);
    }
    return request({ t: 'call', id: nextId++, op, input });
  },
  subscribe(stream: string, params: unknown, listener: (data: unknown) => void): () => void {
    if (!isStreamName(stream)) throw new Error(`unknown stream "${stream}"`);
    parseInput(streams[stream].params, params);
    if (typeof listener !== 'function') throw new Error('listener must be a function');
    const id = nextId++;
    listeners.set(id, listener);
    request({ t: 'sub', id, stream, params }).catch(() => listeners.delete(id));
    return () => {
      listeners.delete(id);
      send({ t: 'unsub', id });
    };
  },
});

contextBridge.exposeInMainWorld('brokerdeck', api);
