import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, GroupCommit, WalSync, type Durability } from '../../../src-main/storage/index.js';

function setup(options: ConstructorParameters<typeof GroupCommit>[1] = {}) {
  const db = openDatabase(null);
  db.exec('CREATE TABLE t (x INTEGER)');
  const gc = new GroupCommit(db, options);
  const count = () => (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  const insert = db.prepare('INSERT INTO t (x) VALUES (?)');
  return { db, gc, count, insert };
}

describe('group commit', () => {
  it('batches many writes into one commit and resolves waiters after it', async () => {
    const { db, gc, count, insert } = setup({ intervalMs: 5 });
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) {
      gc.run(() => insert.run(i));
      waits.push(gc.whenCommitted());
    }
    expect(db.inTransaction).toBe(true);
    expect(count()).toBe(100); // the same connection reads its own writes
    await Promise.all(waits);
    expect(gc.commits).toBe(1);
    expect(db.inTransaction).toBe(false);
    gc.close();
    db.close();
  });

  it('commits early when the batch is full', () => {
    const { db, gc, insert } = setup({ intervalMs: 1000, maxOps: 10 });
    for (let i = 0; i < 25; i++) gc.run(() => insert.run(i));
    expect(gc.commits).toBe(2);
    gc.close();
    expect(gc.commits).toBe(3);
    db.close();
  });

  it('a failing unit rolls back only its own writes', async () => {
    const { db, gc, count, insert } = setup();
    gc.run(() => insert.run(1));
    expect(() =>
      gc.run(() => {
        insert.run(2);
        throw new Error('validation failed half-way');
      }),
    ).toThrow('half-way');
    gc.run(() => insert.run(3));
    await gc.whenCommitted();
    expect(db.prepare('SELECT x FROM t ORDER BY x').pluck().all()).toEqual([1, 3]);
    expect(count()).toBe(2);
    gc.close();
    db.close();
  });

  it('runs beforeCommit inside the transaction', async () => {
    const db = openDatabase(null);
    db.exec('CREATE TABLE t (x INTEGER); CREATE TABLE c (n INTEGER); INSERT INTO c VALUES (0)');
    let n = 0;
    const gc = new GroupCommit(db, { beforeCommit: () => db.prepare('UPDATE c SET n = ?').run(n) });
    gc.run(() => {
      db.prepare('INSERT INTO t VALUES (1)').run();
      n++;
    });
    await gc.whenCommitted();
    expect(db.prepare('SELECT n FROM c').pluck().get()).toBe(1);
    gc.close();
    db.close();
  });

  it('a full database stops the writer: the batch is rolled back, its waiters rejected, later writes refused', async () => {
    const errors: Error[] = [];
    const { db, gc, count } = setup({ intervalMs: 1000, onError: (e) => void errors.push(e) });
    gc.run(() => db.prepare('INSERT INTO t (x) VALUES (0)').run());
    await (gc.flush(), gc.whenCommitted());
    db.exec('CREATE TABLE big (b BLOB)');
    // A real SQLITE_FULL: the database may not grow past its current size plus a few pages.
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages + 4}`);
    const insert = db.prepare('INSERT INTO big (b) VALUES (?)');
    gc.run(() => insert.run(Buffer.alloc(100)));
    const batch = gc.whenCommitted();
    let thrown: unknown;
    try {
      for (let i = 0; i < 100; i++) gc.run(() => insert.run(Buffer.alloc(16_384)));
    } catch (err) {
      thrown = err;
    }
    expect((thrown as { code?: string }).code).toBe('SQLITE_FULL');
    await expect(batch).rejects.toMatchObject({ code: 'SQLITE_FULL' });
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['SQLITE_FULL']);
    expect(db.inTransaction).toBe(false);
    expect(db.prepare('SELECT count(*) FROM big').pluck().get()).toBe(0);
    expect(count()).toBe(1);
    expect(() => gc.run(() => insert.run(Buffer.alloc(1)))).toThrow(/full/);
    await expect(gc.whenCommitted()).rejects.toMatchObject({ code: 'SQLITE_FULL' });
    gc.close();
    db.close();
  });

  it('a failed COMMIT stops the writer too', async () => {
    const errors: Error[] = [];
    const db = openDatabase(null);
    db.exec('CREATE TABLE t (x INTEGER); CREATE TABLE c (n INTEGER)');
    const gc = new GroupCommit(db, { onError: (e) => void errors.push(e) });
    // A deferred foreign key is checked only at COMMIT, where it fails for real.
    db.pragma('foreign_keys = ON');
    db.exec('CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)');
    gc.run(() => db.prepare('INSERT INTO t VALUES (1)').run());
    gc.run(() => db.prepare('INSERT INTO child VALUES (42)').run());
    const batch = gc.whenCommitted();
    gc.flush();
    await expect(batch).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
    expect(errors).toHaveLength(1);
    expect(db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(0);
    expect(() => gc.run(() => db.prepare('INSERT INTO t VALUES (2)').run())).toThrow(/FOREIGN KEY/);
    gc.close();
    db.close();
  });

  describe("'full' mode on a file: the log is synced in the background before waiters resolve", () => {
    const dirs: string[] = [];
    afterEach(() => {
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    });
    function fileDb() {
      const dir = mkdtempSync(join(tmpdir(), 'bd-gc-sync-'));
      dirs.push(dir);
      const db = openDatabase(dir);
      db.exec('CREATE TABLE t (x INTEGER)');
      return { db, dir, insert: db.prepare('INSERT INTO t (x) VALUES (?)') };
    }
    /** The real WalSync, with every step written down and each sync's end held until released. */
    function recorded(db: ReturnType<typeof fileDb>['db'], log: string[], hold = false) {
      const real = new WalSync(db.name);
      const held: Array<() => void> = [];
      const durability: Durability = {
        sync(done) {
          log.push('sync start');
          real.sync((err) => {
            const end = () => {
              log.push(err ? `sync failed` : 'sync end');
              done(err);
            };
            if (hold) held.push(end);
            else end();
          });
        },
        syncNow() {
          log.push('sync now');
          real.syncNow();
        },
        close: () => real.close(),
      };
      return { durability, held, real };
    }

    it('a waiter resolves only after an fdatasync that started after its COMMIT returned', async () => {
      const { db, insert } = fileDb();
      const log: string[] = [];
      const { durability, real } = recorded(db, log);
      const gc = new GroupCommit(db, { intervalMs: 1000, durability, afterCommit: () => log.push(`commit ${gc.commits}`) });
      gc.run(() => insert.run(1));
      let done = false;
      const waiting = gc.whenCommitted().then(() => {
        log.push('resolved');
        done = true;
      });
      gc.flush();
      expect(gc.commits).toBe(1);
      for (let i = 0; i < 20; i++) await Promise.resolve();
      // Committed (the same connection and others see it), but not yet durable: no confirm yet.
      expect(done).toBe(false);
      expect(db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(1);
      await waiting;
      expect(log).toEqual(['commit 1', 'sync start', 'sync end', 'resolved']);
      expect(gc.synced).toBe(1);
      expect(real.syncs).toBe(1);
      // Nothing written since: at once.
      await gc.whenCommitted();
      gc.close();
      db.close();
    });

    it('one sync at a time; the batches committed meanwhile share the next one', async () => {
      const { db, insert } = fileDb();
      const log: string[] = [];
      const { durability, held } = recorded(db, log, true);
      const gc = new GroupCommit(db, { intervalMs: 1000, durability });
      const resolved: number[] = [];
      const batch = (n: number) => {
        gc.run(() => insert.run(n));
        const p = gc.whenCommitted().then(() => void resolved.push(n));
        gc.flush();
        return p;
      };
      const p1 = batch(1);
      await expect.poll(() => held.length).toBe(1);
      const p2 = batch(2);
      const p3 = batch(3);
      // A waiter that comes after the commits waits for them too.
      const after = gc.whenCommitted().then(() => void resolved.push(4));
      expect(log).toEqual(['sync start']);
      held.shift()!();
      await p1;
      expect(resolved).toEqual([1]);
      expect(gc.synced).toBe(1);
      await expect.poll(() => held.length).toBe(1);
      expect(log.filter((l) => l === 'sync start')).toHaveLength(2);
      held.shift()!();
      await Promise.all([p2, p3, after]);
      expect(resolved).toEqual([1, 2, 3, 4]);
      expect(gc.synced).toBe(3);
      gc.close();
      db.close();
    });

    it('a batch nobody waits for starts no sync; a later waiter does, and it covers that batch', async () => {
      const { db, insert } = fileDb();
      const log: string[] = [];
      const { durability } = recorded(db, log);
      const gc = new GroupCommit(db, { intervalMs: 1000, durability });
      gc.run(() => insert.run(1));
      gc.flush();
      expect(gc.commits).toBe(1);
      expect(log).toEqual([]);
      await gc.whenCommitted();
      expect(log).toEqual(['sync start', 'sync end']);
      expect(gc.synced).toBe(1);
      gc.close();
      db.close();
    });

    it('close() syncs what was committed and resolves its waiters', async () => {
      const { db, dir, insert } = fileDb();
      const log: string[] = [];
      const { durability, held } = recorded(db, log, true);
      const gc = new GroupCommit(db, { intervalMs: 1000, durability });
      gc.run(() => insert.run(1));
      const first = gc.whenCommitted();
      gc.flush();
      await expect.poll(() => held.length).toBe(1);
      gc.run(() => insert.run(2));
      const second = gc.whenCommitted();
      gc.close();
      await Promise.all([first, second]);
      expect(log).toEqual(['sync start', 'sync now']);
      // The sync that was under way ends later; it changes nothing.
      held.shift()!();
      db.close();
      const again = openDatabase(dir);
      expect(again.prepare('SELECT count(*) FROM t').pluck().get()).toBe(2);
      again.close();
    });

    it('the default for a database opened in full mode is a WalSync of its log', async () => {
      const { db, insert } = fileDb();
      const gc = new GroupCommit(db, { intervalMs: 1 });
      gc.run(() => insert.run(1));
      const p = gc.whenCommitted();
      await p;
      expect(gc.commits).toBe(1);
      expect(gc.synced).toBe(1);
      gc.close();
      db.close();
    });

    it('a failed sync is a storage failure: its batches are refused, and so is every later write', async () => {
      const { db, insert } = fileDb();
      const errors: Error[] = [];
      const failing: Durability = {
        sync: (done) => setImmediate(() => done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))),
        syncNow: () => undefined,
        close: () => undefined,
      };
      const gc = new GroupCommit(db, { intervalMs: 1000, durability: failing, onError: (e) => void errors.push(e) });
      gc.run(() => insert.run(1));
      const batch = gc.whenCommitted();
      gc.flush();
      await expect(batch).rejects.toMatchObject({ code: 'EIO' });
      expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['EIO']);
      expect(() => gc.run(() => insert.run(2))).toThrow(/i\/o error/);
      await expect(gc.whenCommitted()).rejects.toMatchObject({ code: 'EIO' });
      gc.close();
      db.close();
    });
  });
});
