/**
 * The core's wire listeners: a port that is taken (RabbitMQ on 5672, a Kafka on
 * 9092) moves the listener to a free port, and the API says where apps connect.
 * A listener moved, turned off or on through the API does so at once, keeps its
 * place when the port asked for is taken, and starts there next time unless the
 * command line says otherwise.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../../src-main/contract/errors.js';
import type { ListenerInfo } from '../../../src-main/contract/types.js';
import { startCore, type Core } from '../../../src-main/core/core.js';

let blocker: net.Server;
let taken: number;
let core: Core;

beforeAll(async () => {
  blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  taken = (blocker.address() as net.AddressInfo).port;
  core = await startCore({ dataDir: null, version: '9.9.9', diskFreeLimit: 0, listeners: { amqp: { port: taken, dataDir: null }, kafka: { port: 0 } } });
});
afterAll(async () => {
  await core?.close();
  await new Promise<void>((r) => blocker.close(() => r()));
});

describe('the wire listeners', () => {
  it('move to a free port when theirs is taken, and say so', async () => {
    const list = (await core.call('listeners/list', {})) as ListenerInfo[];
    const amqpListener = list.find((l) => l.protocol === 'amqp')!;
    expect(amqpListener).toMatchObject({ host: '127.0.0.1', requestedPort: taken, tls: false, note: `port ${taken} was in use` });
    expect(amqpListener.port).not.toBe(taken);
    expect(list.find((l) => l.protocol === 'kafka')).toMatchObject({ requestedPort: 0, note: null, port: expect.any(Number) });

    // Where the API says an app connects, it does.
    const connection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${amqpListener.port}`);
    await expect.poll(async () => ((await core.call('listeners/list', {})) as ListenerInfo[]).find((l) => l.protocol === 'amqp')!.connections).toBe(1);
    await connection.close();
    await expect.poll(async () => ((await core.call('listeners/list', {})) as ListenerInfo[]).find((l) => l.protocol === 'amqp')!.connections).toBe(0);
  });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const amqpOf = async (c: Core) => ((await c.call('listeners/list', {})) as ListenerInfo[]).find((l) => l.protocol === 'amqp')!;

describe('configuring a listener', () => {
  it('moves it at once, keeps it where it was when the new port is taken, turns it off and on', async () => {
    const before = await amqpOf(core);
    const client = await amqp.connect(`amqp://guest:guest@127.0.0.1:${before.port}`);
    client.on('error', () => undefined);
    const closed = new Promise<Error | undefined>((resolve) => client.on('close', resolve));

    const port = await freePort();
    const moved = (await core.call('listeners/configure', { protocol: 'amqp', port })) as ListenerInfo;
    expect(moved).toMatchObject({ protocol: 'amqp', port, requestedPort: port, note: null, setting: { enabled: true, port } });
    // The old listener's clients are told goodbye, as at shutdown, and its port is let go.
    expect(((await closed) as Error & { code?: number })?.code).toBe(320);
    expect(await accepts(before.port!)).toBe(false);
    const again = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
    await again.close();

    // The blocker holds a port: asking for it is refused, naming the field, and nothing moves.
    const refused = await core.call('listeners/configure', { protocol: 'amqp', port: taken }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ code: 'CONFLICT', field: 'port' });
    expect((refused as Error).message).toContain(`port ${taken} is in use`);
    expect((await amqpOf(core)).port).toBe(port);
    expect(await accepts(port)).toBe(true);

    const off = (await core.call('listeners/configure', { protocol: 'amqp', enabled: false, port })) as ListenerInfo;
    expect(off).toMatchObject({ port: null, note: 'turned off' });
    expect(await accepts(port)).toBe(false);
    const on = (await core.call('listeners/configure', { protocol: 'amqp', enabled: true, port: 0 })) as ListenerInfo;
    expect(on.port).toEqual(expect.any(Number));
    expect(await accepts(on.port!)).toBe(true);

    const badTls = await core.call('listeners/configure', { protocol: 'amqp', port: 0, tlsCertFile: '/nonexistent/cert.pem', tlsKeyFile: '/nonexistent/key.pem' }).catch((e: unknown) => e);
    expect(badTls).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'tlsCertFile' });
    const kafkaTls = await core.call('listeners/configure', { protocol: 'kafka', port: 0, tlsCertFile: '/a.pem', tlsKeyFile: '/b.pem' }).catch((e: unknown) => e);
    expect((kafkaTls as Error).message).toContain('TLS is available for the AMQP listener only');
  });

  it('starts as saved next time, unless the command line says otherwise', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'brokerdeck-listener-settings-'));
    try {
      const defaults = { amqp: { port: 0, dataDir }, kafka: false as const };
      let c = await startCore({ dataDir, version: '9.9.9', diskFreeLimit: 0, listenerDefaults: defaults });
      const port = await freePort();
      await c.call('listeners/configure', { protocol: 'amqp', port });
      await c.close();

      c = await startCore({ dataDir, version: '9.9.9', diskFreeLimit: 0, listenerDefaults: defaults });
      expect(await amqpOf(c)).toMatchObject({ port, setting: { enabled: true, port } });
      await c.close();

      // A flag for this run wins over what was saved, and does not change it.
      c = await startCore({ dataDir, version: '9.9.9', diskFreeLimit: 0, listeners: { amqp: { port: 0, dataDir } }, listenerDefaults: defaults });
      const now = await amqpOf(c);
      expect(now.port).not.toBe(port);
      expect(now.setting).toEqual({ enabled: true, port });
      await c.close();

    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
