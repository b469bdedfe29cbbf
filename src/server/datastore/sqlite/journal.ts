// JournalStore on SQLite: a single ca_journal row, saved compare-and-set on its version so two CA
// instances (or a stale in-memory copy) cannot overwrite each other's state unnoticed.
import type { Database } from 'better-sqlite3';
import { SigilError } from '../../../spiffe/errors.js';
import type { JournalRecord, JournalStore } from '../types.js';
import { withSqliteErrors } from './dialect.js';

export function sqliteJournalStore(db: Database): JournalStore {
  const stmt = {
    select: db.prepare('SELECT data, version FROM ca_journal WHERE id = 1'),
    // The first save: succeeds only while no row exists.
    insert: db.prepare(
      'INSERT INTO ca_journal (id, data, version) VALUES (1, ?, 1) ON CONFLICT (id) DO NOTHING',
    ),
    update: db.prepare('UPDATE ca_journal SET data = ?, version = version + 1 WHERE id = 1 AND version = ?'),
  };

  return {
    async loadJournal() {
      return withSqliteErrors({ action: 'load ca journal' }, () => {
        const row = stmt.select.get() as JournalRecord | undefined;
        return row === undefined ? null : Object.freeze({ data: row.data, version: row.version });
      });
    },

    async saveJournal(data, expectedVersion) {
      const changed = withSqliteErrors({ action: 'save ca journal' }, () =>
        expectedVersion === 0
          ? stmt.insert.run(data).changes
          : stmt.update.run(data, expectedVersion).changes,
      );
      if (changed === 0) {
        throw new SigilError(
          'ERR_REVISION_CONFLICT',
          `ca journal: expected version ${expectedVersion} but the stored journal has moved on; reload and retry`,
          { reason: 'journal-version' },
        );
      }
      return Object.freeze({ data, version: expectedVersion + 1 });
    },
  };
}
