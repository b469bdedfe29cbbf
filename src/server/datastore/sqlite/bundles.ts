// BundleStore on SQLite: one row per trust domain, replaced whole by putBundle.
import type { Database } from 'better-sqlite3';
import { quote, SigilError } from '../../../spiffe/errors.js';
import type { BundleStore, StoredBundle } from '../types.js';
import { withSqliteErrors } from './dialect.js';

interface BundleRow {
  trust_domain: string;
  bundle_json: string;
  sequence: number;
  updated_at_ms: number;
}

export function sqliteBundleStore(db: Database): BundleStore {
  const stmt = {
    put: db.prepare(`INSERT INTO bundles (trust_domain, bundle_json, sequence, updated_at_ms) VALUES (?, ?, ?, ?)
      ON CONFLICT (trust_domain) DO UPDATE SET bundle_json = excluded.bundle_json,
      sequence = excluded.sequence, updated_at_ms = excluded.updated_at_ms`),
    select: db.prepare('SELECT * FROM bundles WHERE trust_domain = ?'),
    list: db.prepare('SELECT * FROM bundles ORDER BY trust_domain'),
    delete: db.prepare('DELETE FROM bundles WHERE trust_domain = ?'),
  };

  return {
    async putBundle(bundle) {
      return withSqliteErrors({ action: `put bundle ${quote(bundle.trustDomain)}` }, () => {
        stmt.put.run(bundle.trustDomain, bundle.bundleJson, bundle.sequence, bundle.updatedAtMs);
        return Object.freeze({ ...bundle });
      });
    },

    async fetchBundle(trustDomain) {
      return withSqliteErrors({ action: `fetch bundle ${quote(trustDomain)}` }, () => {
        const row = stmt.select.get(trustDomain) as BundleRow | undefined;
        return row === undefined ? null : toBundle(row);
      });
    },

    async listBundles() {
      return withSqliteErrors({ action: 'list bundles' }, () =>
        (stmt.list.all() as BundleRow[]).map(toBundle),
      );
    },

    async deleteBundle(trustDomain) {
      const removed = withSqliteErrors(
        { action: `delete bundle ${quote(trustDomain)}` },
        () => stmt.delete.run(trustDomain).changes,
      );
      if (removed === 0) {
        throw new SigilError(
          'ERR_BUNDLE_NOT_FOUND',
          `bundle for trust domain ${quote(trustDomain)} not found`,
          {
            field: 'trust_domain',
            reason: 'bundle',
          },
        );
      }
    },
  };
}

function toBundle(row: BundleRow): StoredBundle {
  return Object.freeze({
    trustDomain: row.trust_domain,
    bundleJson: row.bundle_json,
    sequence: row.sequence,
    updatedAtMs: row.updated_at_ms,
  });
}
