/**
 * Virtual hosts of the embedded broker: each has its own exchanges, queues and
 * topics in a database of its own; they survive a restart, and deleting one
 * removes its data.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerHost } from '../../../src-main/broker/host.js';
import { silentLogger } from '../../../src-main/ground/logger.js';

const dirs: string[] = [];
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'brokerdeck-vhosts-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const open = (dir: string | null) => BrokerHost.open({ dataDir: dir, logger: silentLogger, diskFreeLimit: 0 });

describe('virtual hosts', () => {
  it('keep their exchanges, queues and messages apart', async () => {
    const host = open(null);
    expect(host.vhostNames()).toEqual(['/']);
    expect(host.createVhost('dev', 'for the team')).toBe(true);
    expect(host.createVhost('dev')).toBe(false);
    expect(host.vhostNames()).toEqual(['/', 'dev']);
    expect(host.describeVhost('dev')).toMatchObject({ name: 'dev', description: 'for the team' });

    host.live('dev').declareQueue('orders');
    await host.live('dev').publish({ exchange: '', routingKey: 'orders', body: Buffer.from('in dev') });
    host.live().declareQueue('orders');
    expect(host.live('dev').getQueue('orders').messages).toBe(1);
    expect(host.live('/').getQueue('orders').messages).toBe(0);
    expect(host.live('/').listQueues().map((q) => q.name)).not.toContain('dev');
    host.close();
  });

  it('refuse unknown and malformed names, naming the field, and keep "/"', () => {
    const host = open(null);
    expect(() => host.live('nope')).toThrow(expect.objectContaining({ code: 'NOT_FOUND', field: 'vhost' }));
    expect(() => host.createVhost('')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'vhost' }));
    expect(() => host.createVhost('é'.repeat(128))).toThrow(/at most 255 bytes/);
    expect(() => host.createVhost('a\nb')).toThrow(/control characters/);
    expect(() => host.deleteVhost('/')).toThrow(expect.objectContaining({ code: 'PRECONDITION_FAILED', field: 'vhost' }));
    expect(() => host.deleteVhost('nope')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    host.close();
  });

  it('survive a restart, each in a private directory of its own, and are deleted with their data', async () => {
    const dir = dataDir();
    let host = open(dir);
    host.createVhost('staging');
    host.createVhost('qa/α');
    host.live('staging').declareQueue('durable', { durable: true });
    await host.live('staging').publish({ exchange: '', routingKey: 'durable', body: Buffer.from('kept'), properties: { deliveryMode: 2 } });
    host.close();

    expect((statSync(join(dir, 'vhosts.json')).mode & 0o777).toString(8)).toBe('600');
    const vhostDirs = readdirSync(join(dir, 'vhosts'));
    expect(vhostDirs).toHaveLength(2);
    for (const d of vhostDirs) expect((statSync(join(dir, 'vhosts', d)).mode & 0o777).toString(8)).toBe('700');

    host = open(dir);
    expect(host.vhostNames()).toEqual(['/', 'staging', 'qa/α']);
    expect(host.live('staging').getQueue('durable').messages).toBe(1);
    const deleted: string[] = [];
    host.events.on('vhostDeleted', (name) => deleted.push(name));
    const staging = JSON.parse(readFileSync(join(dir, 'vhosts.json'), 'utf8')).vhosts.find((v: { name: string }) => v.name === 'staging').dir;
    host.deleteVhost('staging');
    expect(deleted).toEqual(['staging']);
    expect(existsSync(join(dir, staging))).toBe(false);
    expect(() => host.live('staging')).toThrow(/does not exist/);
    host.close();

    host = open(dir);
    expect(host.vhostNames()).toEqual(['/', 'qa/α']);
    host.close();
  });

  it('ignore entries of a tampered definitions file that would point outside their folder', () => {
    const dir = dataDir();
    open(dir).close();
    writeFileSync(join(dir, 'vhosts.json'), JSON.stringify({ vhosts: [{ name: 'evil', dir: '../../etc', createdAt: 0 }, { name: '/', dir: 'vhosts/' + 'a'.repeat(40) }] }));
    const host = open(dir);
    expect(host.vhostNames()).toEqual(['/']);
    host.close();
  });

  it('relay the events of every vhost with its name', async () => {
    const host = open(null);
    host.createVhost('dev');
    const seen: string[] = [];
    host.events.on('record', (event, vhost) => seen.push(`${vhost}:${event.topic}`));
    host.live('dev').createTopic('t', { partitions: 1 });
    await host.live('dev').produce('t', [{ key: null, value: Buffer.from('x') }]);
    host.live().createTopic('u', { partitions: 1 });
    await host.live().produce('u', [{ key: null, value: Buffer.from('y') }]);
    await expect.poll(() => seen.sort()).toEqual(['/:u', 'dev:t']);
    host.close();
  });
});
