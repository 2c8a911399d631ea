import { describe, it, expect } from 'vitest';
import { headersMatch } from '../../../src-main/broker/index.js';
import { memEngine, b } from './helpers.js';

describe('headers exchange matching', () => {
  it('x-match all (default) needs every non-x binding header', () => {
    expect(headersMatch({ format: 'pdf', type: 'report' }, { format: 'pdf', type: 'report', extra: 1 })).toBe(true);
    expect(headersMatch({ 'x-match': 'all', format: 'pdf', type: 'report' }, { format: 'pdf' })).toBe(false);
    expect(headersMatch({ 'x-match': 'all' }, {})).toBe(true);
  });
  it('x-match any needs one', () => {
    expect(headersMatch({ 'x-match': 'any', format: 'pdf', type: 'report' }, { type: 'report' })).toBe(true);
    expect(headersMatch({ 'x-match': 'any', format: 'pdf' }, { format: 'zip' })).toBe(false);
    expect(headersMatch({ 'x-match': 'any' }, { a: 1 })).toBe(false);
  });
  it('ignores x- binding keys unless -with-x', () => {
    expect(headersMatch({ 'x-match': 'all', 'x-tenant': 'a' }, {})).toBe(true);
    expect(headersMatch({ 'x-match': 'all-with-x', 'x-tenant': 'a' }, {})).toBe(false);
    expect(headersMatch({ 'x-match': 'all-with-x', 'x-tenant': 'a' }, { 'x-tenant': 'a' })).toBe(true);
    expect(headersMatch({ 'x-match': 'any-with-x', 'x-tenant': 'a', k: 1 }, { 'x-tenant': 'a' })).toBe(true);
  });
  it('null binding value only requires presence; values compare by type', () => {
    expect(headersMatch({ k: null }, { k: 'anything' })).toBe(true);
    expect(headersMatch({ k: null }, {})).toBe(false);
    expect(headersMatch({ n: 1 }, { n: 1 })).toBe(true);
    expect(headersMatch({ n: 1 }, { n: '1' })).toBe(false);
    expect(headersMatch({ n: 5 }, { n: 5n })).toBe(true);
  });
  it('routes through a headers exchange', async () => {
    const e = memEngine();
    e.declareExchange('hx', { type: 'headers' });
    e.declareQueue('pdf');
    e.declareQueue('any');
    e.bind({ source: 'hx', destination: 'pdf', routingKey: '', arguments: { 'x-match': 'all', format: 'pdf', type: 'report' } });
    e.bind({ source: 'hx', destination: 'any', routingKey: '', arguments: { 'x-match': 'any', format: 'pdf', type: 'log' } });
    const r1 = await e.publish({ exchange: 'hx', routingKey: 'ignored', body: b('1'), properties: { headers: { format: 'pdf', type: 'report' } } });
    expect(r1.routedQueues.sort()).toEqual(['any', 'pdf']);
    const r2 = await e.publish({ exchange: 'hx', routingKey: '', body: b('2'), properties: { headers: { type: 'log' } } });
    expect(r2.routedQueues).toEqual(['any']);
    expect(() => e.bind({ source: 'hx', destination: 'pdf', arguments: { 'x-match': 'some' } })).toThrow(/x-match/);
    e.close();
  });
});
