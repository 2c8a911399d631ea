/**
 * Named prepared statements. Hot paths prepare once and reuse the handle;
 * statements whose SQL depends on a request (filters) go through `dynamic`,
 * which caches by SQL text so a repeated filter shape is prepared once.
 */
import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from './database.js';

export type StatementSet<K extends string> = { readonly [P in K]: Statement };

export function prepareStatements<K extends string>(db: SqliteDatabase, sql: Record<K, string>): StatementSet<K> {
  const out = {} as Record<K, Statement>;
  for (const name of Object.keys(sql) as K[]) {
    try {
      out[name] = db.prepare(sql[name]);
    } catch (err) {
      throw new Error(`cannot prepare statement "${name}": ${(err as Error).message}`);
    }
  }
  return out;
}

export class DynamicStatements {
  private readonly cache = new Map<string, Statement>();

  constructor(
    private readonly db: SqliteDatabase,
    private readonly max = 256,
  ) {}

  /** `raw`: rows come back as arrays (faster for wide rows). */
  get(sql: string, raw = false): Statement {
    const key = raw ? `raw:${sql}` : sql;
    let stmt = this.cache.get(key);
    if (stmt) return stmt;
    stmt = this.db.prepare(sql);
    if (raw) stmt.raw(true);
    if (this.cache.size >= this.max) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, stmt);
    return stmt;
  }
}
