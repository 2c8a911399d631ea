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
});
