/**
 * The wire listeners' shared base, with a line protocol of the test's own:
 * accepting over TCP and TLS, the registry of open connections, a clear error
 * when the port is taken, and a graceful shutdown that lets each connection say
 * goodbye before its socket is destroyed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { Listener, ListenerError, type ConnectionInfo, type ProtocolConnection } from '../../../src-main/protocols/listener.js';

/** Echoes lines; says "bye <reason>" when asked to go away, then ends unless told to linger. */
function echo(linger = false) {
  const accepted: ConnectionInfo[] = [];
  const listener = (port: number, extra: Partial<ConstructorParameters<typeof Listener>[0]> = {}) =>
    new Listener<ProtocolConnection>({
      protocol: 'echo',
      port,
      logger: silentLogger,
      accept(socket, info) {
        accepted.push(info);
        socket.on('data', (d) => socket.write(d));
        return {
          shutdown(reason) {
            socket.write(`bye ${reason}\n`);
            if (!linger) socket.end();
          },
        };
      },
      ...extra,
    });
  return { accepted, listener };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

function readAll(s: net.Socket | tls.TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    s.on('data', (d) => (text += d.toString()));
    s.on('close', () => resolve(text));
  });
}

const certDir = mkdtempSync(join(tmpdir(), 'brokerdeck-listener-tls-'));
afterAll(() => rmSync(certDir, { recursive: true, force: true }));

describe('the listener base', () => {
  it('accepts connections, keeps a registry of them and shuts them down gracefully', async () => {
    const { accepted, listener } = echo();
    const l = listener(0);
    const port = await l.listen();
    expect(l.port).toBe(port);
    const a = await connect(port);
    const b = await connect(port);
    await expect.poll(() => l.connections().size).toBe(2);
    expect(accepted.every((i) => i.loopback && !i.tls && /^127\.0\.0\.1:\d+$/.test(i.remote))).toBe(true);

    const echoed = new Promise<string>((resolve) => a.once('data', (d) => resolve(d.toString())));
    a.write('ping\n');
    expect(await echoed).toBe('ping\n');

    b.destroy();
    await expect.poll(() => l.connections().size).toBe(1);

    const said = readAll(a);
    await l.close(10_000, 'maintenance');
    expect(await said).toBe('bye maintenance\n');
    expect(l.connections().size).toBe(0);
    expect(l.port).toBeNull();
    await expect(connect(port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('destroys a connection that does not leave within the grace period', async () => {
    const { listener } = echo(true);
    const l = listener(0);
    const port = await l.listen();
    const s = await connect(port);
    const closed = readAll(s);
    await expect.poll(() => l.connections().size).toBe(1);
    await l.close(50);
    expect(await closed).toBe('bye broker shutdown\n');
  });

  it('names the port when it is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const taken = (blocker.address() as net.AddressInfo).port;
    const l = echo().listener(taken);
    const error = await l.listen().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ListenerError);
    expect(error).toMatchObject({ code: 'ADDRESS_IN_USE', message: expect.stringContaining(`port ${taken}`) });
    await new Promise<void>((r) => blocker.close(() => r()));
  });

  it('refuses connections beyond its maximum', async () => {
    const { listener } = echo();
    const l = listener(0, { maxConnections: 1 });
    const port = await l.listen();
    await connect(port);
    await expect.poll(() => l.connections().size).toBe(1);
    const second = await connect(port);
    expect(await readAll(second)).toBe('');
    expect(l.connections().size).toBe(1);
    await l.close(1_000);
  });

  it('speaks TLS when given a key and a certificate, and survives a peer that does not', async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const key = readFileSync(join(certDir, 'key.pem'));
    const cert = readFileSync(join(certDir, 'cert.pem'));
    const { accepted, listener } = echo();
    const l = listener(0, { tls: { key, cert } });
    const port = await l.listen();

    // A plain-TCP peer talking to a TLS port fails its handshake: logged, nothing else.
    const plain = await connect(port);
    plain.write('not a client hello\n');
    await readAll(plain);

    const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, ca: cert, servername: 'localhost' }, () => resolve(c));
      c.once('error', reject);
    });
    const echoed = new Promise<string>((resolve) => s.once('data', (d) => resolve(d.toString())));
    s.write('secret\n');
    expect(await echoed).toBe('secret\n');
    expect(accepted.at(-1)?.tls).toBe(true);
    const said = readAll(s);
    await l.close(5_000);
    expect(await said).toBe('bye broker shutdown\n');
  });
});
