// EntryStore on SQLite. Each create, update and delete is one IMMEDIATE transaction that also takes
// the next store-wide revision, so the revision order is the commit order. Duplicates are refused
// by the unique index on (spiffe_id, parent_id, selectors_key), not by a read-then-write check,
// which two writers could both pass. A batch is one transaction with a savepoint per item.
import type { Database } from 'better-sqlite3';
import type { Clock } from '../../../spiffe/clock.js';
import { quote, SigilError } from '../../../spiffe/errors.js';
import {
  applyEntryUpdate,
  describeEntry,
  type EntryFields,
  prepareEntryFilter,
  prepareNewEntry,
  selectorsFromKey,
  selectorsKey,
} from '../entry-input.js';
import { resolvePage, toPage } from '../page.js';
import type {
  BatchResult,
  EntryFilter,
  EntryStore,
  EntryUpdate,
  NewEntry,
  Page,
  PageOf,
  RegistrationEntry,
} from '../types.js';
import { mapSqliteError, withSqliteErrors } from './dialect.js';
import { buildEntryQuery } from './entry-query.js';

interface EntryRow {
  id: string;
  spiffe_id: string;
  parent_id: string;
  selectors_key: string;
  x509_svid_ttl_ms: number;
  jwt_svid_ttl_ms: number;
  dns_names: string;
  federates_with: string;
  admin: number;
  downstream: number;
  hint: string;
  expires_at_ms: number | null;
  revision: number;
  created_at_ms: number;
}

/** Entry operations to run inside a caller's transaction (each item is its own savepoint). */
export interface SqliteEntryOps {
  /** Throws as createEntry does (ERR_ENTRY_DUPLICATE…); only this item's savepoint rolls back. */
  create(entry: NewEntry): RegistrationEntry;
}

export function sqliteEntryStore(db: Database, clock: Clock): { store: EntryStore; ops: SqliteEntryOps } {
  const stmt = {
    nextRevision: db.prepare(
      'UPDATE store_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision',
    ),
    currentRevision: db.prepare('SELECT revision FROM store_revision WHERE id = 1'),
    select: db.prepare('SELECT * FROM registered_entries WHERE id = ?'),
    insert:
      db.prepare(`INSERT INTO registered_entries (id, spiffe_id, parent_id, selectors_key, x509_svid_ttl_ms,
      jwt_svid_ttl_ms, dns_names, federates_with, admin, downstream, hint, expires_at_ms, revision, created_at_ms)
      VALUES (@id, @spiffe_id, @parent_id, @selectors_key, @x509_svid_ttl_ms, @jwt_svid_ttl_ms, @dns_names,
      @federates_with, @admin, @downstream, @hint, @expires_at_ms, @revision, @created_at_ms)`),
    update: db.prepare(`UPDATE registered_entries SET spiffe_id = @spiffe_id, parent_id = @parent_id,
      selectors_key = @selectors_key, x509_svid_ttl_ms = @x509_svid_ttl_ms, jwt_svid_ttl_ms = @jwt_svid_ttl_ms,
      dns_names = @dns_names, federates_with = @federates_with, admin = @admin, downstream = @downstream,
      hint = @hint, expires_at_ms = @expires_at_ms, revision = @revision WHERE id = @id`),
    delete: db.prepare('DELETE FROM registered_entries WHERE id = ?'),
    insertSelector: db.prepare('INSERT INTO entry_selectors (entry_id, type, value) VALUES (?, ?, ?)'),
    deleteSelectors: db.prepare('DELETE FROM entry_selectors WHERE entry_id = ?'),
    count: db.prepare('SELECT COUNT(*) AS n FROM registered_entries'),
    // NULL < n is NULL, so entries without an expiry are never pruned.
    prune: db.prepare('DELETE FROM registered_entries WHERE expires_at_ms < ?'),
  };

  const nextRevision = (): number => (stmt.nextRevision.get() as { revision: number }).revision;

  const insertSelectors = (fields: EntryFields): void => {
    for (const s of fields.selectors) stmt.insertSelector.run(fields.id, s.type, s.value);
  };

  const selectRow = (id: string): EntryRow => {
    const row = stmt.select.get(id) as EntryRow | undefined;
    if (row === undefined) {
      throw new SigilError('ERR_ENTRY_NOT_FOUND', `entry ${quote(id)} not found`, {
        field: 'id',
        reason: 'entry',
      });
    }
    return row;
  };

  const insertTx = db.transaction((fields: EntryFields): RegistrationEntry => {
    const row = toRow(fields, nextRevision(), clock.nowMs());
    stmt.insert.run(row);
    insertSelectors(fields);
    return toEntry(row);
  });

  // `described` learns what the update would make, for a duplicate's message after rollback.
  const updateTx = db.transaction((id: string, update: EntryUpdate, described: { subject?: string }) => {
    const current = toEntry(selectRow(id));
    const fields = applyEntryUpdate(current, update);
    described.subject = describeEntry(fields);
    const row = toRow(fields, nextRevision(), current.createdAtMs);
    stmt.update.run(row);
    if (row.selectors_key !== selectorsKey(current.selectors)) {
      stmt.deleteSelectors.run(id);
      insertSelectors(fields);
    }
    return toEntry(row);
  });

  const deleteTx = db.transaction((id: string): RegistrationEntry => {
    const entry = toEntry(selectRow(id));
    // entry_selectors rows go with it: ON DELETE CASCADE (foreign_keys is on for every connection).
    stmt.delete.run(id);
    nextRevision();
    return entry;
  });

  const pruneTx = db.transaction((nowMs: number): number => {
    const removed = stmt.prune.run(nowMs).changes;
    if (removed > 0) nextRevision();
    return removed;
  });

  // Called inside an open transaction (a batch) the inner transaction becomes a savepoint, so one
  // item's failure rolls back only that item while the batch commits with a single fsync.
  const createOne = (entry: NewEntry, begin: 'immediate' | 'nested'): RegistrationEntry => {
    const fields = prepareNewEntry(entry);
    return withSqliteErrors({ action: 'create entry', subject: describeEntry(fields) }, () =>
      begin === 'immediate' ? insertTx.immediate(fields) : insertTx(fields),
    );
  };

  const deleteOne = (id: string, begin: 'immediate' | 'nested'): RegistrationEntry =>
    withSqliteErrors({ action: `delete entry ${quote(id)}` }, () =>
      begin === 'immediate' ? deleteTx.immediate(id) : deleteTx(id),
    );

  const createBatchTx = db.transaction((entries: readonly NewEntry[]) =>
    entries.map((entry) => settle(() => createOne(entry, 'nested'), 'create entry')),
  );
  const deleteBatchTx = db.transaction((ids: readonly string[]) =>
    ids.map((id) => settle(() => deleteOne(id, 'nested'), `delete entry ${quote(id)}`)),
  );

  const store: EntryStore = {
    async createEntry(entry) {
      return createOne(entry, 'immediate');
    },

    async createEntries(entries) {
      return withSqliteErrors({ action: 'create entries' }, () => createBatchTx.immediate(entries));
    },

    async fetchEntry(id) {
      return withSqliteErrors({ action: `fetch entry ${quote(id)}` }, () => toEntry(selectRow(id)));
    },

    async listEntries(filter: EntryFilter, page?: Page): Promise<PageOf<RegistrationEntry>> {
      const request = resolvePage(page);
      const query = buildEntryQuery(prepareEntryFilter(filter), request);
      const rows = withSqliteErrors({ action: 'list entries' }, () =>
        db.prepare(query.sql).all(...query.params),
      );
      return toPage((rows as EntryRow[]).map(toEntry), request, (e) => e.id);
    },

    async countEntries() {
      return withSqliteErrors({ action: 'count entries' }, () => (stmt.count.get() as { n: number }).n);
    },

    async updateEntry(id, update) {
      const described: { subject?: string } = {};
      try {
        return updateTx.immediate(id, update, described);
      } catch (err) {
        throw mapSqliteError(err, { action: `update entry ${quote(id)}`, ...described });
      }
    },

    async deleteEntry(id) {
      return deleteOne(id, 'immediate');
    },

    async deleteEntries(ids) {
      return withSqliteErrors({ action: 'delete entries' }, () => deleteBatchTx.immediate(ids));
    },

    async pruneEntries(nowMs) {
      return withSqliteErrors({ action: 'prune entries' }, () => pruneTx.immediate(nowMs));
    },

    async currentRevision() {
      return withSqliteErrors(
        { action: 'read revision' },
        () => (stmt.currentRevision.get() as { revision: number }).revision,
      );
    },
  };
  return { store, ops: { create: (entry) => createOne(entry, 'nested') } };
}

/** One batch item: its own savepoint, its own outcome; a failure never aborts the rest. */
function settle<T>(fn: () => T, action: string): BatchResult<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    return { ok: false, error: mapSqliteError(err, { action }) };
  }
}

function toRow(fields: EntryFields, revision: number, createdAtMs: number): EntryRow {
  return {
    id: fields.id,
    spiffe_id: fields.spiffeId,
    parent_id: fields.parentId,
    selectors_key: selectorsKey(fields.selectors),
    x509_svid_ttl_ms: fields.x509SvidTtlMs,
    jwt_svid_ttl_ms: fields.jwtSvidTtlMs,
    dns_names: JSON.stringify(fields.dnsNames),
    federates_with: JSON.stringify(fields.federatesWith),
    admin: fields.admin ? 1 : 0,
    downstream: fields.downstream ? 1 : 0,
    hint: fields.hint,
    expires_at_ms: fields.expiresAtMs,
    revision,
    created_at_ms: createdAtMs,
  };
}

function toEntry(row: EntryRow): RegistrationEntry {
  return Object.freeze({
    id: row.id,
    spiffeId: row.spiffe_id,
    parentId: row.parent_id,
    selectors: selectorsFromKey(row.selectors_key),
    x509SvidTtlMs: row.x509_svid_ttl_ms,
    jwtSvidTtlMs: row.jwt_svid_ttl_ms,
    dnsNames: Object.freeze(JSON.parse(row.dns_names) as string[]),
    federatesWith: Object.freeze(JSON.parse(row.federates_with) as string[]),
    admin: row.admin === 1,
    downstream: row.downstream === 1,
    hint: row.hint,
    expiresAtMs: row.expires_at_ms,
    revision: row.revision,
    createdAtMs: row.created_at_ms,
  });
}
