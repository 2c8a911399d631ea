import { describe, it, expect } from 'vitest';
import { toApiError } from '../../../src-main/core/session.js';
import { BrokerError } from '../../../src-main/broker/index.js';
import { openDatabase } from '../../../src-main/storage/index.js';

describe('errors as the API answers them', () => {
  it('a database that cannot grow is UNAVAILABLE with its cause, not an internal error', () => {
    const db = openDatabase(null);
    db.exec('CREATE TABLE t (b BLOB)');
    db.pragma(`max_page_count = ${(db.pragma('page_count', { simple: true }) as number) + 2}`);
    let full: unknown;
    try {
      for (let i = 0; i < 10; i++) db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(20_000));
    } catch (error) {
      full = error;
    }
    db.close();
    const e = toApiError(full);
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toMatch(/could not write its data \(SQLITE_FULL: database or disk is full\)/);
  });

  it("keeps the broker's codes and fields, and calls anything else internal", () => {
    expect(toApiError(new BrokerError('INVALID_ARGUMENT', 'limit: expected a positive integer', 'limit'))).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'limit' });
    expect(toApiError(new BrokerError('UNAVAILABLE', 'the embedded broker could not write its data'))).toMatchObject({ code: 'UNAVAILABLE' });
    expect(toApiError(new Error('boom'))).toMatchObject({ code: 'INTERNAL', message: 'boom' });
  });
});
