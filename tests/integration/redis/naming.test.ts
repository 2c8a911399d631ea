/**
 * What needs no server: the connection URL taken apart and shown without its
 * password, entry ids compared and stepped, an entry's fields shown as a
 * record, and the names that make a key a dead-letter source.
 */
import { describe, expect, it } from 'vitest';
import { classify, parseRedisUrl, targetOf } from '../../../src-main/connectors/redis/client.js';
import { naming, originalFields, originOf, threshold } from '../../../src-main/connectors/redis/deadletters.js';
import { compareIds, fieldsFor, nextId, prevId, shape, toRecord } from '../../../src-main/connectors/redis/records.js';

describe('the connection URL', () => {
  it('is taken apart with its user, password, database and TLS', () => {
    expect(parseRedisUrl('rediss://app%40prod:p%3Ass%2Fw@cache.example:6380/4')).toEqual({ tls: true, host: 'cache.example', port: 6380, username: 'app@prod', password: 'p:ss/w', db: 4 });
    expect(parseRedisUrl('redis://:only-pass@[::1]')).toEqual({ tls: false, host: '::1', port: 6379, password: 'only-pass', db: 0 });
    expect(() => parseRedisUrl('redis://h/zero')).toThrow(/database number/);
  });

  it('is shown without its password, whatever the password holds', () => {
    const url = 'redis://ops:S3cr%40t%2F%3A@10.0.0.5:6379/2';
    const target = targetOf({ url, cluster: false });
    expect(target).toBe('redis://ops@10.0.0.5:6379/2');
    expect(target).not.toMatch(/S3cr/);
    expect(targetOf({ url, cluster: true })).toBe('redis://ops@10.0.0.5:6379 (cluster)');
    expect(classify(new Error('WRONGPASS invalid username-password pair or user is disabled.'), target)).toMatchObject({ problem: 'auth_failed' });
    expect(classify(Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:6379'), { code: 'ECONNREFUSED' }), target)).toMatchObject({ problem: 'unreachable' });
    expect(classify(new Error("NOPERM this user has no permissions to run the 'scan' command"), target)).toMatchObject({ problem: 'forbidden' });
  });
});

describe('entry ids', () => {
  it('compare as numbers and step across sequence and millisecond boundaries', () => {
    expect(compareIds('9-0', '10-0')).toBe(-1);
    expect(compareIds('10-2', '10-10')).toBe(-1);
    expect(compareIds('10-10', '10-10')).toBe(0);
    expect(nextId('5-18446744073709551615')).toBe('6-0');
    expect(nextId('5-7')).toBe('5-8');
    expect(prevId('6-0')).toBe('5-18446744073709551615');
    expect(prevId('0-0')).toBe('0-0');
  });
});

describe('an entry as a record', () => {
  const f = (...pairs: string[]): Array<[string, Buffer]> => {
    const out: Array<[string, Buffer]> = [];
    for (let i = 0; i + 1 < pairs.length; i += 2) out.push([pairs[i]!, Buffer.from(pairs[i + 1]!)]);
    return out;
  };
  it('takes the first of value, data, body, payload as the value and the rest as headers', () => {
    expect(shape(f('payload', 'p', 'data', 'd', 'x', '1'))).toMatchObject({ value: Buffer.from('d'), headers: { payload: 'p', x: '1' } });
    expect(shape(f('a', '1', 'b', '2')).value.toString()).toBe('{"a":"1","b":"2"}');
    const r = toRecord({ id: '1700000000123-4', fields: f('value', 'v', 'key', 'k') }, 9);
    expect(r).toMatchObject({ partition: 0, offset: 9, position: '1700000000123-4', timestamp: 1700000000123, key: 'k', value: 'v', headers: { key: 'k' } });
  });

  it('is written back as the same fields', () => {
    expect(fieldsFor(Buffer.from('v'), 'k', { trace: 't' }).map(String)).toEqual(['value', 'v', 'key', 'k', 'trace', 't']);
    expect(fieldsFor(null, null, { a: '1' }).map(String)).toEqual(['a', '1']);
  });
});

describe('dead-letter names and origins', () => {
  it('knows the usual names, a pattern, and processing lists', () => {
    const n = naming('errors.{stream}.v1');
    expect(['orders:dlq', 'orders.dlq', 'dlq:orders', 'errors.orders.v1', 'orders'].map((k) => n.sourceOf(k))).toEqual(['orders', 'orders', 'orders', 'orders', null]);
    expect([':dlq', 'dlq:'].map((k) => n.sourceOf(k))).toEqual([null, null]);
    expect(['jobs:processing', 'jobs.processing', 'jobs'].map((k) => n.processingSourceOf(k))).toEqual(['jobs', 'jobs', null]);
  });

  it('reads an entry\'s origin and leaves the dead-letter fields out of the copy', () => {
    const e = { id: '1-0', fields: [['origin-stream', Buffer.from('orders')], ['origin-id', Buffer.from('5-0')], ['reason', Buffer.from('boom')], ['value', Buffer.from('v')]] as Array<[string, Buffer]> };
    expect(originOf(e)).toEqual({ stream: 'orders', id: '5-0' });
    expect(originalFields(e).map(String)).toEqual(['value', 'v']);
  });

  it('takes a group\'s own threshold by name or by stream and name', () => {
    const config = { deadLetterAfterDeliveries: 5, deadLetterDeliveries: { billing: 2, 'orders#audit': 9 } } as never;
    expect([threshold(config, 'orders', 'billing'), threshold(config, 'orders', 'audit'), threshold(config, 'other', 'audit')]).toEqual([2, 9, 5]);
  });
});
