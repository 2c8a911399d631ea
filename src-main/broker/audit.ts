/**
 * The embedded broker's audit log: one row per destructive or bulk action
 * (deletes, purges, offset resets, re-drive jobs), newest first, the last
 * 10,000 kept. A row is written inside the transaction of the action it
 * describes, so the log never claims what did not happen.
 */
import type { SqliteDatabase } from '../storage/database.js';
import { prepareStatements } from '../storage/statements.js';
import type { AuditEntry } from './types.js';

const SQL = {
  insertAudit: 'INSERT INTO audit (at, connection_id, action, source, target, count, selection, state) VALUES (?,?,?,?,?,?,?,?)',
  updateAudit: 'UPDATE audit SET count = ?, state = ? WHERE id = ?',
  listAudit: 'SELECT * FROM audit ORDER BY id DESC LIMIT ?',
  pruneAudit: 'DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET 10000)',
} as const;

interface AuditRow {
  id: number;
  at: number;
  connection_id: string;
  action: string;
  source: string;
  target: string;
  count: number;
  selection: string;
  state: string;
}

export class AuditLog {
  private readonly st;

  constructor(
    db: SqliteDatabase,
    private readonly now: () => number,
  ) {
    this.st = prepareStatements(db, SQL);
  }

  /** Writes a row (inside the caller's transaction); returns its id. */
  insert(connectionId: string, action: string, source: string, target: string, count: number, selection: string, state: string): number {
    const r = this.st.insertAudit.run(this.now(), connectionId, action, source, target, count, selection, state);
    return Number(r.lastInsertRowid);
  }

  /** Records an action of the embedded broker (`local`) and keeps the log bounded. */
  record(action: string, source: string, target: string, count: number, selection: string, state: string): void {
    this.insert('local', action, source, target, count, selection, state);
    this.st.pruneAudit.run();
  }

  update(id: number, count: number, state: string): void {
    this.st.updateAudit.run(count, state, id);
  }

  /** Newest first. */
  list(limit: number): AuditEntry[] {
    const rows = this.st.listAudit.all(limit) as AuditRow[];
    return rows.map((r) => ({
      id: String(r.id),
      at: r.at,
      connectionId: r.connection_id,
      action: r.action,
      source: r.source,
      target: r.target,
      count: r.count,
      selection: r.selection,
      state: r.state,
    }));
  }
}
