import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, durabilityOf, migrate, schemaVersion, MIGRATIONS, type Migration } from '../../../src-main/storage/index.js';

describe('migrations', () => {
  it('applies every numbered step once and records it', () => {
    const db = openDatabase(null);
    expect(schemaVersion(db)).toBe(0);
    const r = migrate(db);
    expect(r).toEqual({ from: 0, to: MIGRATIONS.length, applied: MIGRATIONS.map((m) => m.version) });
    expect(schemaVersion(db)).toBe(MIGRATIONS.length);
    const rows = db.prepare('SELECT version, name FROM schema_version ORDER BY version').all();
    expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    expect(migrate(db).applied).toEqual([]);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(['queues', 'messages', 'delayed', 'exchanges', 'bindings', 'topics', 'partitions', 'records', 'group_offsets', 'redrive_jobs', 'audit', 'metrics_minute']));
    db.close();
  });

  it('upgrades an older file step by step; a failing step rolls back and keeps the old version', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bd-mig-'));
    try {
      const v1: Migration[] = [{ version: 1, name: 'one', up: (db) => db.exec('CREATE TABLE a (x INTEGER)') }];
      let db = openDatabase(dir);
      migrate(db, v1);
      db.close();
      const broken: Migration[] = [
        ...v1,
        { version: 2, name: 'two', up: (db) => db.exec('CREATE TABLE b (y INTEGER)') },
        {
          version: 3,
          name: 'three',
          up: (db) => {
            db.exec('CREATE TABLE c (z INTEGER)');
            throw new Error('boom');
          },
        },
      ];
      db = openDatabase(dir);
      expect(() => migrate(db, broken)).toThrow('boom');
      expect(schemaVersion(db)).toBe(2);
      expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'c'").get()).toEqual({ n: 0 });
      db.close();
      db = openDatabase(dir);
      expect(() => migrate(db, v1)).toThrow(/newer than this Brokerdeck/);
      expect(() => migrate(db, [{ version: 2, name: 'x', up: () => undefined }])).toThrow(/numbered/);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('opens files in WAL mode with 16 KiB pages and the chosen sync mode', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bd-mig-'));
    try {
      const db = openDatabase(dir, { synchronous: 'normal' });
      migrate(db);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('page_size', { simple: true })).toBe(16384);
      expect(db.pragma('synchronous', { simple: true })).toBe(1);
      expect(durabilityOf(db)).toBeNull();
      db.close();
      // 'full' (the default): NORMAL in SQLite, the log synced in the background by the group commit.
      const full = openDatabase(dir);
      expect(full.pragma('synchronous', { simple: true })).toBe(1);
      const sync = durabilityOf(full);
      expect(sync).not.toBeNull();
      sync!.close();
      full.close();
      const inCommit = openDatabase(dir, { synchronous: 'full-in-commit' });
      expect(inCommit.pragma('synchronous', { simple: true })).toBe(2);
      expect(durabilityOf(inCommit)).toBeNull();
      inCommit.close();
      expect(() => openDatabase(dir, { synchronous: 'fast' as never })).toThrow(/synchronous: expected one of full, full-in-commit, normal, got "fast"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
