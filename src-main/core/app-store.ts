/**
 * The app's own state, apart from the broker's: publish templates, the history
 * of what was sent, and per-connection settings such as read-only. It lives in
 * `app.db` beside the broker's database, in WAL mode, with numbered migrations.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { openSqlite } from '../storage/native.js';
import type { AuditEntry, HistoryEntry, Template } from '../contract/types.js';
import { ApiError } from '../contract/errors.js';

const MIGRATIONS: string[] = [
  `CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE templates (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, payload TEXT NOT NULL, updated_at INTEGER NOT NULL);
   CREATE TABLE publish_history (id TEXT PRIMARY KEY, at INTEGER NOT NULL, connection_id TEXT NOT NULL, target TEXT NOT NULL,
                                 count INTEGER NOT NULL, summary TEXT NOT NULL, payload TEXT NOT NULL);
   CREATE INDEX publish_history_at ON publish_history(at DESC);`,
  // Saved connections: name and kind in clear for listing, the whole
  // configuration (URLs with passwords, keys) sealed with the data key.
  `CREATE TABLE connections (id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, sealed BLOB NOT NULL, created_at INTEGER NOT NULL);`,
  // Re-drives on external systems are audited here; the embedded broker keeps its own in its database.
  `CREATE TABLE audit (id TEXT PRIMARY KEY, at INTEGER NOT NULL, connection_id TEXT NOT NULL, action TEXT NOT NULL, source TEXT NOT NULL,
                      target TEXT NOT NULL, count INTEGER NOT NULL, selection TEXT NOT NULL, state TEXT NOT NULL);
   CREATE INDEX audit_at ON audit(connection_id, at DESC);`,
];

/** Largest template (its JSON), so that listing templates stays quick: 1 MiB. */
export const MAX_TEMPLATE_BYTES = 1024 * 1024;

/** Kept per store; older entries are dropped when a new one is written. */
const HISTORY_LIMIT = 500;

export class AppStore {
  private constructor(private readonly db: Database.Database) {}

  static open(dataDir: string | null): AppStore {
    const db = openSqlite(dataDir ? join(dataDir, 'app.db') : ':memory:');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    const version = db.pragma('user_version', { simple: true }) as number;
    for (let i = version; i < MIGRATIONS.length; i++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[i]!);
        db.pragma(`user_version = ${i + 1}`);
      })();
    }
    return new AppStore(db);
  }

  close(): void {
    this.db.close();
  }

  getSetting(key: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  setSetting(key: string, value: string): void {
    this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  isReadOnly(connectionId: string): boolean {
    return this.getSetting(`readOnly:${connectionId}`) === 'true';
  }

  setReadOnly(connectionId: string, readOnly: boolean): void {
    this.setSetting(`readOnly:${connectionId}`, String(readOnly));
  }

  listConnections(): Array<{ id: string; kind: string; name: string; sealed: Buffer }> {
    return this.db.prepare('SELECT id, kind, name, sealed FROM connections ORDER BY created_at').all() as Array<{
      id: string;
      kind: string;
      name: string;
      sealed: Buffer;
    }>;
  }

  saveConnection(row: { id: string; kind: string; name: string; sealed: Buffer }): void {
    this.db
      .prepare(
        `INSERT INTO connections (id, kind, name, sealed, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, name = excluded.name, sealed = excluded.sealed`,
      )
      .run(row.id, row.kind, row.name, row.sealed, Date.now());
  }

  deleteConnection(id: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM connections WHERE id = ?').run(id);
      this.db.prepare('DELETE FROM settings WHERE key = ?').run(`readOnly:${id}`);
    })();
  }

  /** Writes or updates an audit row (a job's row is rewritten when it ends). */
  recordAudit(entry: AuditEntry): void {
    this.db
      .prepare(
        `INSERT INTO audit (id, at, connection_id, action, source, target, count, selection, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET count = excluded.count, state = excluded.state`,
      )
      .run(entry.id, entry.at, entry.connectionId, entry.action, entry.source, entry.target, entry.count, entry.selection, entry.state);
  }

  listAudit(connectionId: string, limit: number): AuditEntry[] {
    const rows = this.db
      .prepare('SELECT id, at, connection_id, action, source, target, count, selection, state FROM audit WHERE connection_id = ? ORDER BY at DESC LIMIT ?')
      .all(connectionId, limit) as Array<Omit<AuditEntry, 'connectionId'> & { connection_id: string }>;
    return rows.map(({ connection_id, ...r }) => ({ ...r, connectionId: connection_id }));
  }

  listTemplates(): Template[] {
    const rows = this.db.prepare('SELECT id, name, payload, updated_at FROM templates ORDER BY name').all() as Array<{
      id: string;
      name: string;
      payload: string;
      updated_at: number;
    }>;
    return rows.map((r) => ({ id: r.id, name: r.name, payload: JSON.parse(r.payload) as Record<string, unknown>, updatedAt: r.updated_at }));
  }

  /**
   * Saves by name (no id: a template of that name is replaced) or by id (a rename
   * onto another template's name is a conflict, not an overwrite).
   */
  saveTemplate(input: { id?: string | undefined; name: string; payload: Record<string, unknown> }): Template {
    const payload = JSON.stringify(input.payload);
    if (Buffer.byteLength(payload) > MAX_TEMPLATE_BYTES) {
      throw new ApiError('TOO_LARGE', `payload: a template may hold at most ${MAX_TEMPLATE_BYTES / 1024 / 1024} MiB (this one is ${Buffer.byteLength(payload)} bytes); import large bodies as NDJSON instead`, 'payload');
    }
    const existing = this.db.prepare('SELECT id FROM templates WHERE name = ?').get(input.name) as { id: string } | undefined;
    if (input.id !== undefined && existing && existing.id !== input.id) {
      throw new ApiError('CONFLICT', `name: another template is already called ${JSON.stringify(input.name)}`, 'name');
    }
    const id = input.id ?? existing?.id ?? randomUUID();
    const updatedAt = Date.now();
    this.db
      .prepare(
        `INSERT INTO templates (id, name, payload, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, payload = excluded.payload, updated_at = excluded.updated_at`,
      )
      .run(id, input.name, payload, updatedAt);
    return { id, name: input.name, payload: input.payload, updatedAt };
  }

  deleteTemplate(id: string): boolean {
    return this.db.prepare('DELETE FROM templates WHERE id = ?').run(id).changes > 0;
  }

  addHistory(entry: Omit<HistoryEntry, 'id' | 'at'>): HistoryEntry {
    const full: HistoryEntry = { id: randomUUID(), at: Date.now(), ...entry };
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO publish_history (id, at, connection_id, target, count, summary, payload) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(full.id, full.at, full.connectionId, full.target, full.count, full.summary, JSON.stringify(full.payload));
      this.db
        .prepare('DELETE FROM publish_history WHERE id NOT IN (SELECT id FROM publish_history ORDER BY at DESC LIMIT ?)')
        .run(HISTORY_LIMIT);
    })();
    return full;
  }

  listHistory(limit: number): HistoryEntry[] {
    const rows = this.db
      .prepare('SELECT id, at, connection_id, target, count, summary, payload FROM publish_history ORDER BY at DESC LIMIT ?')
      .all(limit) as Array<{ id: string; at: number; connection_id: string; target: string; count: number; summary: string; payload: string }>;
    return rows.map((r) => ({
      id: r.id,
      at: r.at,
      connectionId: r.connection_id,
      target: r.target,
      count: r.count,
      summary: r.summary,
      payload: JSON.parse(r.payload) as Record<string, unknown>,
    }));
  }
}
