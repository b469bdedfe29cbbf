// The SQLite DataStore: one better-sqlite3 connection per server, tuned so that an acknowledged write
// survives kill -9 and power loss (WAL + synchronous=FULL), migrated at open. better-sqlite3 is
// synchronous; the async methods keep the contract engine-neutral (PostgreSQL really awaits).
import { closeSync, fchmodSync, openSync } from 'node:fs';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import type { Clock } from '../../../spiffe/clock.js';
import { quote, SigilError } from '../../../spiffe/errors.js';
import type { Migration } from '../migrations/migration.js';
import { SQLITE_MIGRATIONS } from '../migrations/sqlite-migrations.js';
import type { DataStore } from '../types.js';
import { sqliteAttestationStore } from './attestations.js';
import { sqliteBundleStore } from './bundles.js';
import { mapSqliteError } from './dialect.js';
import { sqliteEntryStore } from './entries.js';
import { sqliteJournalStore } from './journal.js';
import { applySqliteMigrations } from './migrate.js';
import { sqliteNodeStore } from './nodes.js';
import { sqliteTokenStore } from './tokens.js';

export interface SqliteStoreOptions {
  /** The database file; created with mode 0600 when absent. Its directory must exist. */
  readonly path: string;
  /** Stamps createdAtMs on entries and applied_at_ms on migrations. */
  readonly clock: Clock;
  /** How long a write waits for another connection's lock before failing, in milliseconds. Defaults to 5s. */
  readonly busyTimeoutMs?: number;
  /** The schema to migrate to. Defaults to SQLITE_MIGRATIONS; tests pass others. */
  readonly migrations?: readonly Migration[];
}

const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

export async function openSqliteStore(options: SqliteStoreOptions): Promise<DataStore> {
  createPrivateFile(options.path);
  let db: Database | undefined;
  try {
    db = new BetterSqlite3(options.path, { fileMustExist: true });
    configureConnection(db, options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
    applySqliteMigrations(db, options.migrations ?? SQLITE_MIGRATIONS, options.clock.nowMs());
  } catch (err) {
    db?.close();
    throw mapSqliteError(err, { action: `open sqlite datastore ${quote(options.path)}` });
  }
  const open = db;
  const entries = sqliteEntryStore(open, options.clock);
  const nodes = sqliteNodeStore(open);
  const tokens = sqliteTokenStore(open);
  return {
    ...entries.store,
    ...nodes.store,
    ...tokens.store,
    ...sqliteAttestationStore(open, { entries: entries.ops, nodes: nodes.ops, tokens: tokens.ops }),
    ...sqliteBundleStore(open),
    ...sqliteJournalStore(open),
    async close() {
      // Idempotent: shutdown paths may close twice. Closing checkpoints the WAL into the main file.
      if (open.open) open.close();
    },
  };
}

/** Per-connection settings; exported for the test that reads them back. */
export function configureConnection(db: Database, busyTimeoutMs: number): void {
  // Set before anything else: the first statement may already need to wait for another writer.
  db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') {
    throw new SigilError(
      'ERR_DATASTORE',
      `sqlite: could not enable WAL mode (journal_mode is ${quote(mode)})`,
      {
        reason: 'journal-mode',
      },
    );
  }
  // FULL syncs the WAL on every commit: NORMAL (the usual WAL pairing) can lose the last commits
  // on power loss, and we acknowledge writes to operators and agents.
  db.pragma('synchronous = FULL');
  // Per connection and off in stock SQLite (better-sqlite3's build happens to default it on); the
  // selector tables rely on ON DELETE CASCADE, so say it rather than depend on how SQLite was built.
  db.pragma('foreign_keys = ON');
}

/**
 * Creates the file with mode 0600 before SQLite opens it, so it never exists with looser
 * permissions. SQLite gives the -wal and -shm files the main file's mode. An existing file keeps
 * the mode the operator gave it.
 */
function createPrivateFile(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new SigilError(
      'ERR_DATASTORE',
      `sqlite: cannot create database file ${quote(path)}: ${(err as Error).message}`,
      {
        reason: 'create-file',
        cause: err,
      },
    );
  }
  try {
    // The umask may have stripped bits we asked for, never added any; chmod states the mode outright.
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}
