// Versioned schema migrations, engine-neutral: each engine keeps its own ordered list (SQLite here,
// PostgreSQL later) and its own runner; this file holds the shape and the checks both runners share.
// It does not run SQL itself.
import { SigilError } from '../../../spiffe/errors.js';

export interface Migration {
  /** 1, 2, 3…: strictly increasing without gaps, never renumbered once released. */
  readonly version: number;
  /** Short snake_case label recorded beside the version, so a mismatched history is detectable. */
  readonly name: string;
  readonly sql: string;
}

/** What the database says it has applied, as read from `schema_migrations`. */
export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
}

/** Throws when a migration list is malformed; a programming error, caught by the engine's own tests. */
export function checkMigrationList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new SigilError(
        'ERR_DATASTORE',
        `migrations: entry ${i} has version ${m.version}; versions must run 1, 2, 3… without gaps`,
        { reason: 'migration-list' },
      );
    }
  });
}

/**
 * Decides which migrations still need to run. Refuses a database that is newer than this code (a
 * downgrade would otherwise write rows the newer schema does not expect) or whose history names a
 * migration differently from this code (it was migrated by a different build).
 */
export function pendingMigrations(
  known: readonly Migration[],
  applied: readonly AppliedMigration[],
): readonly Migration[] {
  const latestKnown = known.length;
  const latestApplied = applied.reduce((max, m) => Math.max(max, m.version), 0);
  if (latestApplied > latestKnown) {
    throw new SigilError(
      'ERR_DATASTORE',
      `database schema version ${latestApplied} is newer than this sigil-server supports (${latestKnown}); upgrade sigil-server`,
      { reason: 'schema-too-new' },
    );
  }
  const appliedVersions = new Set<number>();
  for (const a of applied) {
    const expected = known[a.version - 1];
    if (!expected || expected.name !== a.name) {
      throw new SigilError(
        'ERR_DATASTORE',
        `database schema migration ${a.version} is recorded as "${a.name}" but this sigil-server knows it as "${expected?.name ?? '(none)'}"; the database was migrated by a different build`,
        { reason: 'schema-mismatch' },
      );
    }
    appliedVersions.add(a.version);
  }
  if (appliedVersions.size !== latestApplied) {
    // Migrations run in order inside one transaction, so a hole means the table was edited by hand.
    throw new SigilError(
      'ERR_DATASTORE',
      `database schema history has gaps (versions ${[...appliedVersions].sort((x, y) => x - y).join(', ')}); restore it from a backup`,
      { reason: 'schema-mismatch' },
    );
  }
  return known.filter((m) => !appliedVersions.has(m.version));
}
