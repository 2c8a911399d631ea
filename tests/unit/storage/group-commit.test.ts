import { describe, it, expect } from 'vitest';
import { openDatabase, GroupCommit } from '../../../src-main/storage/index.js';

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
});
