/**
 * Opens a better-sqlite3 database with the right native addon. Under plain
 * Node (tests, headless mode) the package's own build is used. The desktop
 * core runs in Electron, whose ABI differs: `brokerdeck desktop` builds a
 * second copy of the addon for Electron into out/native/electron/ and passes
 * its path in BROKERDECK_SQLITE_BINDING; better-sqlite3's `nativeBinding`
 * option loads it. Node's copy is never rebuilt, so tests keep working.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ensurePrivateFile } from './private-files.js';

export type SqliteDatabase = Database.Database;

export function openSqlite(filename: string, options: Database.Options = {}): SqliteDatabase {
  if (filename !== ':memory:' && !options.readonly) ensurePrivateFile(filename);
  const binding = process.env.BROKERDECK_SQLITE_BINDING;
  const isElectron = typeof process.versions.electron === 'string';
  if (isElectron && binding && existsSync(binding)) return new Database(filename, { ...options, nativeBinding: binding });
  return new Database(filename, options);
}
