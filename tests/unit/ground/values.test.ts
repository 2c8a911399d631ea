import { describe, it, expect } from 'vitest';
import { valueEquals } from '../../../src-main/ground/values.js';
import { compileFilter, looseEquals } from '../../../src-main/ground/filter.js';
import { ApiError } from '../../../src-main/contract/errors.js';

describe('ground value equality', () => {
  it('compares field-table values as AMQP carries them', () => {
    expect(valueEquals(5, 5n)).toBe(true);
    expect(valueEquals(5n, 5)).toBe(true);
    expect(valueEquals(5.5, 5n)).toBe(false);
    expect(valueEquals(Buffer.from('ab'), new Uint8Array([97, 98]))).toBe(true);
    expect(valueEquals(Buffer.from('ab'), Buffer.from('ac'))).toBe(false);
    expect(valueEquals(new Date(1000), new Date(1000))).toBe(true);
    expect(valueEquals(new Date(1000), 1000)).toBe(false);
    expect(valueEquals({ a: 1, b: [1, { c: 'x' }] }, { b: [1, { c: 'x' }], a: 1 })).toBe(true);
    expect(valueEquals({ a: 1, gone: undefined }, { a: 1 })).toBe(true);
    expect(valueEquals({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(valueEquals([1, 2], { 0: 1, 1: 2 })).toBe(false);
    expect(valueEquals(null, {})).toBe(false);
  });

  it('lets form text match typed values', () => {
    expect(looseEquals(42, '42')).toBe(true);
    expect(looseEquals(true, 'true')).toBe(true);
    expect(looseEquals(Buffer.from('tenant-a'), 'tenant-a')).toBe(true);
    expect(looseEquals({ a: 1 }, '{"a":1}')).toBe(false);
  });

  it('refuses a bad filter with the contract error naming the field', () => {
    const refusal = (() => {
      try {
        compileFilter({ property: { name: 'colour', value: 'x' } });
      } catch (error) {
        return error;
      }
      return null;
    })();
    expect(refusal).toBeInstanceOf(ApiError);
    expect(refusal).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'filter.property.name' });
    expect(() => compileFilter({ jsonPath: '$.a[' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'filter.jsonPath' }));
  });
});
