export { openDatabase, durabilityOf, DATABASE_FILE, type OpenDatabaseOptions, type SqliteDatabase, type SynchronousMode } from './database.js';
export { GroupCommit, isStorageFailure, type GroupCommitOptions } from './group-commit.js';
export { migrate, schemaVersion, MIGRATIONS, SEQ_BITS, SEQ_SPAN, MAX_QID, type Migration, type MigrationResult } from './migrations.js';
export { prepareStatements, DynamicStatements, type StatementSet } from './statements.js';
export { openSqlite } from './native.js';
export { ensurePrivateDir, ensurePrivateFile } from './private-files.js';
export { WalSync, type Durability } from './wal-sync.js';
