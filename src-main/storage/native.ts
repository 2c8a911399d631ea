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

/** The native addon to load instead of the package's own build, if any (under Electron). */
export function sqliteBinding(): string | undefined {
  const binding = process.env.BROKERDECK_SQLITE_BINDING;
  return typeof process.versions.electron === 'string' && binding && existsSync(binding) ? binding : undefined;
}

export function openSqlite(filename: string, options: Database.Options = {}): SqliteDatabase {
  if (filename !== ':memory:' && !options.readonly) ensurePrivateFile(filename);
  const binding = sqliteBinding();
  if (binding) return new Database(filename, { ...options, nativeBinding: binding });
  return new Database(filename, options);
}
