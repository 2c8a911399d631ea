/**
 * Copies the write-ahead log into the database from a worker thread.
 *
 * A checkpoint writes every page the log holds into the database file and,
 * with `synchronous = NORMAL`, syncs the log before and the database after:
 * tens of milliseconds under a steady stream of writes, which on the main
 * thread hold up parsing, routing and delivering. Here a second connection to
 * the same file, in a thread of its own, runs `PRAGMA wal_checkpoint(PASSIVE)`
 * every `everyMs`. PASSIVE never blocks the writer: it copies the frames that
 * no reader still needs and leaves the rest for the next time, and SQLite's
 * own locks keep the two connections apart (the durability reasoning of
 * wal-sync.ts holds whichever connection checkpoints).
 *
 * SQLite syncs the database file only after a complete checkpoint; the
 * worker syncs it after every pass that copied pages, so that they are not
 * left for the writer's thread to sync.
 *
 * Under writes that never pause, the log is copied but never fully at the
 * moment a new write transaction begins, so SQLite never starts it over and
 * it would grow without end. The worker reports the log's length after each
 * pass; once that passes `maxLogBytes`, `needsMainCheckpoint()` tells the
 * group commit to checkpoint once itself, right after a COMMIT, when no
 * transaction is open: what is left to copy then is what came in since the
 * worker's last pass, and the next write starts the log over.
 *
 * If the worker cannot start (no way to load SQLite in it), `failed` is set
 * and the group commit checkpoints on the main thread as before.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const done = new Int32Array(workerData.done);
let db = null;
let fd = null;
let timer = null;
function finish() {
  if (timer) clearTimeout(timer);
  timer = null;
  try { if (db) db.close(); } catch {}
  try { if (fd !== null) fs.closeSync(fd); } catch {}
  db = null;
  fd = null;
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
  parentPort.close();
}
parentPort.on('message', (m) => { if (m === 'stop') finish(); });
try {
  const Database = require(workerData.module);
  const options = { fileMustExist: true, timeout: 100 };
  if (workerData.binding) options.nativeBinding = workerData.binding;
  db = new Database(workerData.file, options);
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 0');
  fd = fs.openSync(workerData.file, 'r+');
} catch (e) {
  parentPort.postMessage({ type: 'failed', message: String((e && e.message) || e) });
  finish();
}
if (db) {
  const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
  let copied = 0;
  const pass = () => {
    timer = null;
    if (!db) return;
    try {
      const row = checkpoint.get();
      // SQLite syncs the database only after a complete pass; under steady writes few are, and
      // the pages copied by the others would wait, unsynced, for the writer's own checkpoint.
      if (row.checkpointed > 0 && row.checkpointed !== copied) fs.fdatasyncSync(fd);
      copied = row.checkpointed;
      parentPort.postMessage({ type: 'pass', log: row.log, checkpointed: row.checkpointed });
    } catch (e) {
      parentPort.postMessage({ type: 'error', message: String((e && e.message) || e), code: e && e.code });
    }
    if (db) timer = setTimeout(pass, workerData.everyMs);
  };
  timer = setTimeout(pass, workerData.everyMs);
}
`;

/** Where better-sqlite3 is, resolved from this module (or, bundled as CommonJS, from the bundle and NODE_PATH). */
function sqliteModule(): string | null {
  try {
    const from = typeof __filename === 'string' ? __filename : import.meta.url;
    return createRequire(from).resolve('better-sqlite3');
  } catch {
    return null;
  }
}

export interface CheckpointerOptions {
  /** The database file (its log is `<file>-wal`). */
  file: string;
  everyMs: number;
  pageSize: number;
  /** A log longer than this asks for a checkpoint on the main thread (see above). */
  maxLogBytes?: number;
  /** The native addon to load instead of the package's own (storage/native.ts). */
  binding?: string;
}

export class BackgroundCheckpointer {
  private readonly worker: Worker | null = null;
  private readonly done = new Int32Array(new SharedArrayBuffer(4));
  private readonly maxLogFrames: number;
  private logFrames = 0;
  private stopped = false;
  /** The worker could not run checkpoints: the caller checkpoints itself. */
  failed: Error | null = null;
  /** The latest pass's failure, null once a pass succeeds. */
  error: Error | null = null;
  /** Passes done so far (tests read it). */
  passes = 0;

  constructor(options: CheckpointerOptions) {
    this.maxLogFrames = Math.max(1, Math.floor((options.maxLogBytes ?? 64 * 1024 * 1024) / Math.max(512, options.pageSize)));
    const module = sqliteModule();
    if (module === null) {
      this.failed = new Error('better-sqlite3 could not be found for the checkpoint thread');
      return;
    }
    try {
      const worker = new Worker(SOURCE, { eval: true, workerData: { module, file: options.file, everyMs: options.everyMs, binding: options.binding ?? null, done: this.done.buffer } });
      worker.unref();
      worker.on('message', (m: { type: string; log?: number; checkpointed?: number; message?: string; code?: string }) => {
        if (m.type === 'pass') {
          this.passes++;
          this.error = null;
          this.logFrames = m.log ?? 0;
        } else if (m.type === 'error') {
          this.error = Object.assign(new Error(m.message), { code: m.code });
        } else if (m.type === 'failed') {
          this.failed = new Error(m.message);
        }
      });
      worker.on('error', (err) => {
        this.failed ??= err;
      });
      this.worker = worker;
    } catch (err) {
      this.failed = err instanceof Error ? err : new Error(String(err));
    }
  }

  /** The log has grown past its bound since the worker last looked: checkpoint once on the writer's thread. */
  needsMainCheckpoint(): boolean {
    return this.failed !== null || this.logFrames > this.maxLogFrames;
  }

  /** The writer checkpointed itself: the log starts over at the next write. */
  mainCheckpointed(): void {
    this.logFrames = 0;
  }

  /** Stops the worker and waits (a few ms, at most a pass) until its connection is closed. */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    const worker = this.worker;
    if (!worker || this.failed) {
      void worker?.terminate();
      return;
    }
    worker.postMessage('stop');
    Atomics.wait(this.done, 0, 0, 5_000);
    void worker.terminate();
  }
}
