// Brings a SQLite database up to the schema this build knows, at open. All pending migrations and
// their schema_migrations rows commit in one IMMEDIATE transaction: a crash leaves the old schema or
// the new one, and two servers opening the same file at once take turns instead of both migrating.
import type { Database } from 'better-sqlite3';
import {
  type AppliedMigration,
  checkMigrationList,
  type Migration,
  pendingMigrations,
} from '../migrations/migration.js';

/** Returns the versions it applied (empty when the schema was already current). */
export function applySqliteMigrations(
  db: Database,
  migrations: readonly Migration[],
  nowMs: number,
): number[] {
  checkMigrationList(migrations);
  const migrate = db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at_ms BIGINT NOT NULL
    )`);
    const applied = db.prepare('SELECT version, name FROM schema_migrations').all() as AppliedMigration[];
    const pending = pendingMigrations(migrations, applied);
    const record = db.prepare(
      'INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)',
    );
    for (const m of pending) {
      db.exec(m.sql);
      record.run(m.version, m.name, nowMs);
    }
    return pending.map((m) => m.version);
  });
  return migrate.immediate();
}
