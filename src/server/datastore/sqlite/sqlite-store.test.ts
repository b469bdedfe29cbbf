import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../spiffe/clock.js';
import { parseSelector } from '../../../spiffe/selector.js';
import { describeDataStoreConformance } from '../conformance.js';
import { openDataStore } from '../index.js';
import type { Migration } from '../migrations/migration.js';
import { SQLITE_MIGRATIONS } from '../migrations/sqlite-migrations.js';
import type { DataStore } from '../types.js';
import { configureConnection, openSqliteStore } from './sqlite-store.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'sigil-sqlite-'));
}

describeDataStoreConformance('sqlite', async () => {
  const dir = tempDir();
  const path = join(dir, 'datastore.sqlite3');
  const clock = new ManualClock();
  let current: DataStore = await openSqliteStore({ path, clock });
  return {
    store: current,
    async reopen() {
      await current.close();
      current = await openSqliteStore({ path, clock });
      return current;
    },
    async cleanup() {
      await current.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('sqlite datastore specifics', () => {
  let dir: string;
  let path: string;
  const clock = new ManualClock(1_700_000_000_000);
  const opened: DataStore[] = [];
  const open = async (migrations?: readonly Migration[]) => {
    const store = await openSqliteStore({ path, clock, ...(migrations ? { migrations } : {}) });
    opened.push(store);
    return store;
  };
  const inspect = <T>(fn: (db: BetterSqlite3.Database) => T): T => {
    const db = new BetterSqlite3(path, { readonly: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };

  beforeEach(() => {
    dir = tempDir();
    path = join(dir, 'datastore.sqlite3');
  });

  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const entry = (uid: number) => ({
    spiffeId: 'spiffe://example.org/w',
    parentId: 'spiffe://example.org/agent',
    selectors: [parseSelector(`unix:uid:${uid}`), parseSelector('unix:gid:0')],
    x509SvidTtlMs: 0,
    jwtSvidTtlMs: 0,
    dnsNames: [],
    federatesWith: [],
    admin: false,
    downstream: false,
    hint: '',
    expiresAtMs: null,
  });

  it('creates the database and its WAL file with mode 0600', async () => {
    const store = await open();
    await store.createEntry(entry(1));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
  });

  it('leaves the mode of an existing database file alone', async () => {
    await (await open()).close();
    chmodSync(path, 0o640);
    await open();
    expect(statSync(path).mode & 0o777).toBe(0o640);
  });

  it('configures WAL, full sync, foreign keys and a busy timeout on its connection', async () => {
    await (await open()).close();
    const db = new BetterSqlite3(path);
    try {
      configureConnection(db, 1234);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(db.pragma('busy_timeout', { simple: true })).toBe(1234);
    } finally {
      db.close();
    }
  });

  it('cascades deletes to selector rows, leaving no orphans', async () => {
    const store = await open();
    const a = await store.createEntry(entry(1));
    await store.createEntry(entry(2));
    await store.deleteEntry(a.id);
    await store.pruneEntries(0);
    await store.upsertNode({
      spiffeId: 'spiffe://example.org/agent',
      attestationType: 'join_token',
      certSerial: '01',
      certNotAfterMs: 0,
      selectors: [parseSelector('join_token:t')],
      banned: false,
      canReattest: false,
      createdAtMs: 0,
      updatedAtMs: 0,
    });
    await store.deleteNode('spiffe://example.org/agent');
    const counts = inspect((db) => ({
      entrySelectors: db.prepare('SELECT COUNT(*) FROM entry_selectors').pluck().get(),
      nodeSelectors: db.prepare('SELECT COUNT(*) FROM node_selectors').pluck().get(),
    }));
    expect(counts).toEqual({ entrySelectors: 2, nodeSelectors: 0 });
  });

  it('records each migration once, however often the database is opened', async () => {
    await (await open()).close();
    await (await open()).close();
    const rows = inspect((db) =>
      db.prepare('SELECT version, name, applied_at_ms FROM schema_migrations').all(),
    );
    expect(rows).toEqual(
      SQLITE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name, applied_at_ms: 1_700_000_000_000 })),
    );
  });

  it('applies only the new migration to an existing database', async () => {
    await (await open()).close();
    const next: Migration = {
      version: SQLITE_MIGRATIONS.length + 1,
      name: 'add_probe',
      sql: 'CREATE TABLE probe (id INTEGER PRIMARY KEY)',
    };
    await (await open([...SQLITE_MIGRATIONS, next])).close();
    const versions = inspect((db) =>
      db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all(),
    );
    expect(versions).toEqual([...SQLITE_MIGRATIONS.map((m) => m.version), next.version]);
  });

  it('rolls back every pending migration when one fails', async () => {
    const broken: Migration[] = [
      ...SQLITE_MIGRATIONS,
      { version: SQLITE_MIGRATIONS.length + 1, name: 'broken', sql: 'CREATE TABLE nope (' },
    ];
    await expect(open(broken)).rejects.toMatchObject({ code: 'ERR_DATASTORE' });
    const tables = inspect((db) =>
      db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'registered_entries'`).all(),
    );
    expect(tables).toEqual([]);
  });

  it('refuses a database whose schema is newer than this build', async () => {
    await (await open()).close();
    const db = new BetterSqlite3(path);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)').run(
      7,
      'future',
      1,
    );
    db.close();
    const known = SQLITE_MIGRATIONS.length;
    await expect(open()).rejects.toMatchObject({
      code: 'ERR_DATASTORE',
      reason: 'schema-too-new',
      message: `database schema version 7 is newer than this sigil-server supports (${known}); upgrade sigil-server`,
    });
  });

  it('refuses a database migrated by a build that named a migration differently', async () => {
    await (await open()).close();
    const db = new BetterSqlite3(path);
    db.prepare(`UPDATE schema_migrations SET name = 'something_else' WHERE version = 1`).run();
    db.close();
    await expect(open()).rejects.toMatchObject({ code: 'ERR_DATASTORE', reason: 'schema-mismatch' });
  });

  it('wraps an unusable path in ERR_DATASTORE', async () => {
    path = join(dir, 'missing-dir', 'datastore.sqlite3');
    await expect(open()).rejects.toMatchObject({ code: 'ERR_DATASTORE' });
  });

  it('is what openDataStore opens for kind sqlite; postgres is not available yet', async () => {
    const store = await openDataStore({ kind: 'sqlite', path }, clock);
    opened.push(store);
    expect(await store.countEntries()).toBe(0);
    await expect(
      openDataStore({ kind: 'postgres', connectionString: 'postgres://localhost/sigil' }, clock),
    ).rejects.toMatchObject({ code: 'ERR_NOT_IMPLEMENTED' });
  });
});
