/**
 * Makes committed transactions durable off the main thread.
 *
 * With WAL and `synchronous = NORMAL`, SQLite's COMMIT only write()s the
 * transaction's frames to the -wal file: they are in the OS page cache, so a
 * process crash (SIGKILL) keeps them, but a power cut or an OS crash may not.
 * A WalSync then calls fdatasync on that same file from libuv's thread pool;
 * once it returns, every frame written before it started is on disk, and the
 * group commit resolves the waiters of those commits (publisher confirms, and
 * so on) only then. Meanwhile the main thread goes on parsing, routing and
 * delivering, where `synchronous = FULL` would block it in fsync inside COMMIT.
 *
 * Why this is as safe as FULL:
 * - SQLite recovers a WAL by reading frames in order while their salts and
 *   running checksums match, up to the last commit frame: once a commit's
 *   frames and those before it are on disk, recovery finds the commit.
 * - The log is rewritten from its start only after a checkpoint has copied it
 *   all into the database. In NORMAL mode SQLite itself syncs the log before a
 *   checkpoint and the database after a complete one, and syncs the new log
 *   header when it starts over: a commit whose frames get overwritten before
 *   its fdatasync ran is already in the synced database file.
 * - A newly created -wal file's directory entry is synced once, on the first
 *   sync (SQLite does the same for a new log in FULL mode).
 */
import { closeSync, fdatasync, fdatasyncSync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

/** How a group commit makes what it committed durable; see GroupCommitOptions.durability. */
export interface Durability {
  /** Makes everything written so far durable, then calls `done` (an error: it may not be). One call at a time. */
  sync(done: (err: Error | null) => void): void;
  /** The same, synchronously (closing). */
  syncNow(): void;
  /** Lets go of its files once no sync is under way. */
  close(): void;
}

export class WalSync implements Durability {
  private fd: number | null = null;
  private syncing = false;
  private closed = false;
  /** Syncs completed so far (tests and benches read it). */
  syncs = 0;

  /** `databaseFile`: the path of the SQLite database, whose log is `<databaseFile>-wal`. */
  constructor(private readonly databaseFile: string) {}

  private open(): number {
    if (this.fd !== null) return this.fd;
    // Read-write: on Windows, flushing a file's buffers needs write access. Never
    // created here: it exists once the first transaction has committed. Never
    // locked by SQLite either, so closing this descriptor releases none of its locks.
    const fd = openSync(`${this.databaseFile}-wal`, 'r+');
    this.fd = fd;
    syncDirectory(dirname(this.databaseFile));
    return fd;
  }

  sync(done: (err: Error | null) => void): void {
    if (this.syncing) throw new Error('a WAL sync is already under way');
    let fd: number;
    try {
      if (this.closed) throw new Error('the WAL sync is closed');
      fd = this.open();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      queueMicrotask(() => done(e));
      return;
    }
    this.syncing = true;
    fdatasync(fd, (err) => {
      this.syncing = false;
      if (!err) this.syncs++;
      if (this.closed) this.release();
      done(err);
    });
  }

  syncNow(): void {
    fdatasyncSync(this.open());
    this.syncs++;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // An fdatasync under way still uses the descriptor: it is closed when that returns.
    if (!this.syncing) this.release();
  }

  private release(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      // Already gone; nothing to keep.
    }
    this.fd = null;
  }
}

/** fsync on a directory makes its entries (a new file's name) durable; Windows cannot open one, and does not need it. */
function syncDirectory(dir: string): void {
  if (process.platform === 'win32') return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
