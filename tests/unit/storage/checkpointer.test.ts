/**
 * Checkpoints from a worker thread: the log is copied into the database file
 * without the writer's thread taking part, a log grown past its bound asks
 * the writer for one checkpoint of its own, and closing waits until the
 * worker has let go of the file.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { BackgroundCheckpointer } from '../../../src-main/storage/checkpointer.js';
import { GroupCommit, openDatabase } from '../../../src-main/storage/index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fileDb() {
  const dir = mkdtempSync(join(tmpdir(), 'bd-ckpt-'));
  dirs.push(dir);
  const db = openDatabase(dir);
  db.exec('CREATE TABLE t (x INTEGER, body BLOB)');
  return { db, dir, insert: db.prepare('INSERT INTO t (x, body) VALUES (?, ?)') };
}

const body = Buffer.alloc(1024, 7);

describe('checkpoints from a worker thread', () => {
  it('copy the log into the database file while the writer only commits', async () => {
    const { db, insert } = fileDb();
    const before = statSync(db.name).size;
    const checkpointer = new BackgroundCheckpointer({ file: db.name, everyMs: 10, pageSize: 16384 });
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) insert.run(i, body);
    })();
    await expect.poll(() => statSync(db.name).size, { timeout: 30_000 }).toBeGreaterThan(before + 2000 * 1024);
    // The worker reports each pass after it: the report may come after the file grew.
    await expect.poll(() => checkpointer.passes, { timeout: 30_000 }).toBeGreaterThan(0);
    expect(checkpointer.failed).toBeNull();
    expect(checkpointer.error).toBeNull();
    checkpointer.close();
    db.close();
  });

  it('ask the writer for a checkpoint of its own once the log passes its bound', async () => {
    const { db, insert } = fileDb();
    const checkpointer = new BackgroundCheckpointer({ file: db.name, everyMs: 10, pageSize: 16384, maxLogBytes: 256 * 1024 });
    expect(checkpointer.needsMainCheckpoint()).toBe(false);
    db.transaction(() => {
      for (let i = 0; i < 1000; i++) insert.run(i, body);
    })();
    await expect.poll(() => checkpointer.needsMainCheckpoint(), { timeout: 30_000 }).toBe(true);
    db.pragma('wal_checkpoint(PASSIVE)');
    checkpointer.mainCheckpointed();
    expect(checkpointer.needsMainCheckpoint()).toBe(false);
    checkpointer.close();
    db.close();
  });

  it('run under the group commit, which closes the worker before its own connection', async () => {
    const { db, dir, insert } = fileDb();
    const before = statSync(db.name).size;
    const gc = new GroupCommit(db, { checkpointEveryMs: 10, intervalMs: 1 });
    for (let i = 0; i < 3000; i++) gc.run(() => insert.run(i, body));
    await gc.whenCommitted();
    await expect.poll(() => statSync(db.name).size, { timeout: 30_000 }).toBeGreaterThan(before + 3000 * 1024);
    expect(gc.checkpointError).toBeNull();
    gc.close();
    db.close();
    const again = new Database(join(dir, 'brokerdeck.db'), { readonly: true });
    expect((again.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n).toBe(3000);
    again.close();
  });
});
