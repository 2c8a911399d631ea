/**
 * Numbered schema migrations. `schema_version` records every applied step;
 * each step runs in its own transaction, so a crash mid-upgrade leaves the
 * file at the previous version and the next open retries the step.
 *
 * Never edit a released migration: append a new one.
 */
import type { SqliteDatabase } from './database.js';

export interface Migration {
  version: number;
  name: string;
  up: (db: SqliteDatabase) => void;
}

/**
 * Message row ids encode the queue: id = qid * 2^36 + seq. A queue's rows are
 * one contiguous rowid range in enqueue order, so FIFO delivery, browsing and
 * keyset cursors are plain rowid range scans with no secondary index to
 * maintain on the hot path. 2^36 sequence numbers per queue (68 billion) and
 * qids up to 2^17 keep every id below 2^53, exact in a JS number. Stream
 * records use the same scheme with a partition id.
 */
export const SEQ_BITS = 36;
export const SEQ_SPAN = 2 ** SEQ_BITS;
export const MAX_QID = 2 ** (53 - SEQ_BITS) - 1;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial broker schema',
    up(db) {
      db.exec(`
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

        CREATE TABLE exchanges (
          name TEXT PRIMARY KEY,
          type TEXT NOT NULL,
          durable INTEGER NOT NULL,
          auto_delete INTEGER NOT NULL,
          internal INTEGER NOT NULL,
          arguments TEXT NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE queues (
          qid INTEGER PRIMARY KEY,
          name TEXT NOT NULL UNIQUE,
          durable INTEGER NOT NULL,
          auto_delete INTEGER NOT NULL,
          exclusive INTEGER NOT NULL,
          arguments TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          -- Counters kept in step with the rows by the group commit, so
          -- opening a store never has to count a million rows.
          msg_count INTEGER NOT NULL DEFAULT 0,
          msg_bytes INTEGER NOT NULL DEFAULT 0,
          next_seq INTEGER NOT NULL DEFAULT 1,
          -- Highest seq handed to a consumer: rows at or below it that are
          -- still present after a restart were in flight, so redelivered.
          delivered_upto INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE bindings (
          source TEXT NOT NULL,
          destination TEXT NOT NULL,
          destination_type TEXT NOT NULL,
          routing_key TEXT NOT NULL,
          args_key TEXT NOT NULL,
          arguments TEXT NOT NULL,
          PRIMARY KEY (source, destination_type, destination, routing_key, args_key)
        ) WITHOUT ROWID;

        CREATE TABLE messages (
          id INTEGER PRIMARY KEY,
          prio INTEGER,
          enq INTEGER NOT NULL,
          exp INTEGER,
          exchange TEXT NOT NULL,
          rk TEXT NOT NULL,
          props TEXT,
          body BLOB NOT NULL,
          size INTEGER NOT NULL,
          bin INTEGER NOT NULL,
          redelivered INTEGER NOT NULL,
          returns INTEGER NOT NULL,
          persistent INTEGER NOT NULL,
          dedup TEXT
        );
        -- Only priority queues fill prio; the partial index costs nothing for the rest.
        CREATE INDEX messages_prio ON messages (prio, id) WHERE prio IS NOT NULL;
        -- Lets open() drop non-persistent messages without scanning the table.
        CREATE INDEX messages_transient ON messages (persistent) WHERE persistent = 0;
        CREATE INDEX messages_dedup ON messages (dedup) WHERE dedup IS NOT NULL;

        CREATE TABLE delayed (
          id INTEGER PRIMARY KEY,
          qid INTEGER NOT NULL,
          due INTEGER NOT NULL,
          enq INTEGER NOT NULL,
          exchange TEXT NOT NULL,
          rk TEXT NOT NULL,
          props TEXT,
          body BLOB NOT NULL,
          size INTEGER NOT NULL,
          bin INTEGER NOT NULL,
          redelivered INTEGER NOT NULL,
          returns INTEGER NOT NULL,
          persistent INTEGER NOT NULL,
          dedup TEXT
        );
        CREATE INDEX delayed_due ON delayed (due, id);
        CREATE INDEX delayed_queue ON delayed (qid, id);

        CREATE TABLE dedup_cache (
          qid INTEGER NOT NULL,
          key TEXT NOT NULL,
          expires_at INTEGER NOT NULL,
          PRIMARY KEY (qid, key)
        ) WITHOUT ROWID;
        CREATE INDEX dedup_cache_expiry ON dedup_cache (expires_at);

        CREATE TABLE topics (
          tid INTEGER PRIMARY KEY,
          name TEXT NOT NULL UNIQUE,
          partitions INTEGER NOT NULL,
          retention_ms INTEGER,
          retention_bytes INTEGER,
          created_at INTEGER NOT NULL
        );
        CREATE TABLE partitions (
          pid INTEGER PRIMARY KEY,
          tid INTEGER NOT NULL,
          partition INTEGER NOT NULL,
          start_offset INTEGER NOT NULL,
          next_offset INTEGER NOT NULL,
          bytes INTEGER NOT NULL,
          UNIQUE (tid, partition)
        );
        CREATE TABLE records (
          id INTEGER PRIMARY KEY,
          ts INTEGER NOT NULL,
          key BLOB,
          value BLOB,
          headers TEXT,
          size INTEGER NOT NULL
        );
        CREATE TABLE group_offsets (
          group_id TEXT NOT NULL,
          topic TEXT NOT NULL,
          partition INTEGER NOT NULL,
          committed INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (group_id, topic, partition)
        ) WITHOUT ROWID;

        CREATE TABLE redrive_jobs (
          id TEXT PRIMARY KEY,
          connection_id TEXT NOT NULL,
          source TEXT NOT NULL,
          target TEXT,
          selection TEXT NOT NULL,
          edit TEXT,
          rate REAL,
          state TEXT NOT NULL,
          moved INTEGER NOT NULL,
          failed INTEGER NOT NULL,
          total INTEGER NOT NULL,
          cursor INTEGER NOT NULL,
          upper INTEGER NOT NULL,
          audit_id INTEGER,
          started_at INTEGER NOT NULL,
          finished_at INTEGER,
          error TEXT
        ) WITHOUT ROWID;

        CREATE TABLE audit (
          id INTEGER PRIMARY KEY,
          at INTEGER NOT NULL,
          connection_id TEXT NOT NULL,
          action TEXT NOT NULL,
          source TEXT NOT NULL,
          target TEXT NOT NULL,
          count INTEGER NOT NULL,
          selection TEXT NOT NULL,
          state TEXT NOT NULL
        );

        CREATE TABLE metrics_minute (
          kind TEXT NOT NULL,
          name TEXT NOT NULL,
          ts INTEGER NOT NULL,
          data TEXT NOT NULL,
          PRIMARY KEY (kind, name, ts)
        ) WITHOUT ROWID;
        CREATE INDEX metrics_minute_ts ON metrics_minute (ts);
      `);
    },
  },
  {
    version: 2,
    name: 'why re-driven messages were not moved',
    up(db) {
      // JSON list of [reason, count]: the job's result says why messages stayed.
      db.exec('ALTER TABLE redrive_jobs ADD COLUMN failures TEXT');
    },
  },
  {
    version: 3,
    name: "a topic's own largest record batch",
    up(db) {
      // Kafka's topic-level max.message.bytes; null: the listener's default.
      db.exec('ALTER TABLE topics ADD COLUMN max_message_bytes INTEGER');
    },
  },
  {
    version: 4,
    name: "a topic's cleanup policy and compaction settings",
    up(db) {
      // Kafka's cleanup.policy ("compact", "compact,delete"; null: "delete"), min.compaction.lag.ms and delete.retention.ms (null: Kafka's defaults).
      db.exec('ALTER TABLE topics ADD COLUMN cleanup_policy TEXT');
      db.exec('ALTER TABLE topics ADD COLUMN min_compaction_lag_ms INTEGER');
      db.exec('ALTER TABLE topics ADD COLUMN delete_retention_ms INTEGER');
    },
  },
  {
    version: 5,
    name: "a topic's min.cleanable.dirty.ratio",
    up(db) {
      // Kafka's min.cleanable.dirty.ratio (0 to 1); null: 0.5.
      db.exec('ALTER TABLE topics ADD COLUMN min_cleanable_dirty_ratio REAL');
    },
  },
  {
    version: 6,
    name: 'record batches as Kafka clients produced them',
    up(db) {
      // id = pid * 2^36 + the batch's first offset (the records' scheme); last = the id of its last record.
      db.exec('CREATE TABLE record_batches (id INTEGER PRIMARY KEY, last INTEGER NOT NULL, bytes BLOB NOT NULL)');
      // A record whose key, value and headers are in a stored batch: that batch's id (its value column then holds NULL for a null value, else an empty blob).
      db.exec('ALTER TABLE records ADD COLUMN batch INTEGER');
    },
  },
  {
    version: 7,
    name: 'Kafka transactions',
    up(db) {
      // A transactional id's producer id and epoch, its timeout and where its transaction is (Kafka's coordinator state).
      db.exec(`CREATE TABLE kafka_transactions (
        transactional_id TEXT PRIMARY KEY,
        producer_id INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        timeout_ms INTEGER NOT NULL,
        state TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      )`);
      // The partitions of an ongoing transaction; first_offset: its first record there (null until one);
      // ranges: its records' offsets as JSON [[base, count], …] where fetches encode them from rows (removed if it aborts).
      db.exec(`CREATE TABLE kafka_transaction_partitions (
        transactional_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        first_offset INTEGER,
        ranges TEXT,
        PRIMARY KEY (transactional_id, topic, partition)
      ) WITHOUT ROWID`);
      // Aborted transactions per partition, for read_committed fetches: the producer, its first offset and its abort marker's.
      db.exec(`CREATE TABLE kafka_aborted_transactions (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        last_offset INTEGER NOT NULL,
        producer_id INTEGER NOT NULL,
        first_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, partition, last_offset)
      ) WITHOUT ROWID`);
    },
  },
];

export interface MigrationResult {
  from: number;
  to: number;
  applied: number[];
}

export function schemaVersion(db: SqliteDatabase): number {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get();
  if (!exists) return 0;
  const row = db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null };
  return row.v ?? 0;
}

export function migrate(db: SqliteDatabase, migrations: readonly Migration[] = MIGRATIONS, now: () => number = Date.now): MigrationResult {
  for (let i = 0; i < migrations.length; i++) {
    const m = migrations[i];
    if (!m || m.version !== i + 1) throw new Error(`migrations must be numbered 1, 2, 3…; entry ${i} has version ${m?.version}`);
  }
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const from = schemaVersion(db);
  const latest = migrations.length;
  if (from > latest) {
    throw new Error(`the database is at schema version ${from}, newer than this Brokerdeck understands (${latest}); open it with a newer version`);
  }
  const applied: number[] = [];
  const record = db.prepare('INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)');
  for (const m of migrations.slice(from)) {
    db.transaction(() => {
      m.up(db);
      record.run(m.version, m.name, now());
    })();
    applied.push(m.version);
  }
  return { from, to: Math.max(from, latest), applied };
}
