/**
 * The data folder holds message bodies, templates and sealed credentials:
 * readable by its owner only. The folder is created 0700 and each database
 * 0600 before SQLite opens it; SQLite gives its -wal and -shm files the
 * database's mode. Files and folders left wider by an earlier version are
 * tightened; a folder the person chose that holds other things (`--data-dir
 * /tmp`) is left as it is, the files in it are still 0600.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const OWN_FILES = new Set(['brokerdeck.db', 'app.db', 'secret.key', 'vhosts', 'vhosts.json']);
const posix = process.platform !== 'win32';

function tighten(path: string, mode: number): void {
  if (posix && (statSync(path).mode & 0o077) !== 0) chmodSync(path, mode);
}

export function ensurePrivateDir(dir: string): void {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return;
  }
  const ours = readdirSync(dir).every((name) => OWN_FILES.has(name.replace(/-(wal|shm|journal)$/, '')));
  if (ours) tighten(dir, 0o700);
}

/** Creates `file` 0600 if it is missing, tightens it (and its WAL files) if it is wider. */
export function ensurePrivateFile(file: string): void {
  if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
  for (const path of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(path)) tighten(path, 0o600);
}
