import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../src-main/contract/errors.js';
import { operations, connectionConfigSchema } from '../../../src-main/contract/operations.js';
import { routes } from '../../../src-main/contract/routes.js';
import { parseInput } from '../../../src-main/contract/validate.js';

function failure(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('expected a validation error');
}

describe('contract validation', () => {
  it('names the field and the problem', () => {
    const e = failure(() => parseInput(operations.publish.input, { connectionId: 'local', body: 'x', properties: { priority: 300 } }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.field).toBe('properties.priority');
    expect(e.message).toBe('properties.priority: priority must be 0–255');
  });

  it('reads booleans from a query string as they are written ("false" is false)', () => {
    const del = operations['queues/delete'].input;
    expect(parseInput(del, { connectionId: 'local', queue: 'q', ifEmpty: 'false', ifUnused: 'true' })).toMatchObject({ ifEmpty: false, ifUnused: true });
    expect(parseInput(del, { connectionId: 'local', queue: 'q', ifEmpty: '1', ifUnused: '0' })).toMatchObject({ ifEmpty: true, ifUnused: false });
    expect(parseInput(del, { connectionId: 'local', queue: 'q', ifEmpty: true })).toMatchObject({ ifEmpty: true, ifUnused: false });
    expect(parseInput(operations['queues/messages'].input, { connectionId: 'local', queue: 'q', includeUnacked: 'false' })).toMatchObject({ includeUnacked: false, allowQuorumPeek: false });
    const e = failure(() => parseInput(del, { connectionId: 'local', queue: 'q', ifEmpty: 'maybe' }));
    expect(e.field).toBe('ifEmpty');
    expect(e.message).toContain('ifEmpty must be true or false');
  });

  it('refuses unknown message properties instead of dropping them', () => {
    const e = failure(() => parseInput(operations.publish.input, { connectionId: 'local', body: 'x', properties: { persistent: true } }));
    expect(e.field).toBe('properties');
    expect(e.message).toContain('persistent');
  });

  it('applies defaults', () => {
    const v = parseInput(operations.publish.input, { connectionId: 'local', body: '{}' });
    expect(v).toMatchObject({ exchange: '', routingKey: '', bodyEncoding: 'utf8', count: 1, mandatory: true, properties: {} });
  });

  it('coerces query-string numbers and bounds them', () => {
    expect(parseInput(operations['queues/messages'].input, { connectionId: 'local', queue: 'q', limit: '250' }).limit).toBe(250);
    const e = failure(() => parseInput(operations['queues/messages'].input, { connectionId: 'local', queue: 'q', limit: '0' }));
    expect(e.message).toBe('limit: limit must be at least 1');
  });

  it('requires a selection for a re-drive', () => {
    const e = failure(() => parseInput(operations['redrives/start'].input, { connectionId: 'local', source: 'dlq' }));
    expect(e.field).toBe('messageIds');
    const edit = failure(() =>
      parseInput(operations['redrives/start'].input, { connectionId: 'local', source: 'dlq', messageIds: ['a', 'b'], edit: { body: 'x' } }),
    );
    expect(edit.field).toBe('edit');
  });

  it('tells which connection field is wrong', () => {
    const e = failure(() => parseInput(connectionConfigSchema, { kind: 'rabbitmq', name: 'prod', amqpUrl: 'http://x' }));
    expect(e.field).toBe('amqpUrl');
    const k = failure(() => parseInput(connectionConfigSchema, { kind: 'kafka', name: 'k', brokers: ['nohost'] }));
    expect(k.field).toBe('brokers.0');
    const kind = failure(() => parseInput(connectionConfigSchema, { kind: 'nats', name: 'n' }));
    expect(kind.field).toBe('kind');
  });

  it('every route names an operation of the contract, and no two routes collide', () => {
    const seen = new Set<string>();
    for (const route of routes) {
      expect(operations[route.op], route.path).toBeDefined();
      const key = `${route.method} ${route.path}`;
      expect(seen.has(key), key).toBe(false);
      seen.add(key);
    }
  });
});
