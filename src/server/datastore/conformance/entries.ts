// Conformance: entry create, fetch, duplicates, update, delete, batches, revisions and prune.
import { beforeEach, describe, expect, it } from 'vitest';
import type { DataStore } from '../types.js';
import {
  type ConformanceContext,
  type ConformanceHarness,
  expectCode,
  newEntry,
  OTHER_PARENT,
  PARENT,
  sels,
  TD,
} from './support.js';

export function describeEntryConformance(ctx: ConformanceContext): void {
  let store: DataStore;
  let h: ConformanceHarness;
  beforeEach(() => {
    store = ctx.store;
    h = ctx.harness;
  });

  describe('entries: create and fetch', () => {
    it('stores every field, assigns a UUID id and canonicalises selectors', async () => {
      const created = await store.createEntry(
        newEntry({
          selectors: sels('unix:uid:1000', 'k8s:ns:default', 'unix:gid:50', 'unix:uid:1000'),
          x509SvidTtlMs: 3_600_000,
          jwtSvidTtlMs: 300_000,
          dnsNames: ['web.example.org', 'web'],
          federatesWith: ['other.org'],
          admin: true,
          downstream: true,
          hint: 'frontend',
          expiresAtMs: 1_800_000_000_000,
        }),
      );
      expect(created.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(created.selectors).toEqual(sels('k8s:ns:default', 'unix:gid:50', 'unix:uid:1000'));
      expect(created.revision).toBeGreaterThan(0);
      expect(Number.isInteger(created.createdAtMs)).toBe(true);
      const fetched = await store.fetchEntry(created.id);
      expect(fetched).toEqual(created);
      expect(fetched).toMatchObject({
        spiffeId: `${TD}/workload/default`,
        parentId: PARENT,
        x509SvidTtlMs: 3_600_000,
        jwtSvidTtlMs: 300_000,
        dnsNames: ['web.example.org', 'web'],
        federatesWith: ['other.org'],
        admin: true,
        downstream: true,
        hint: 'frontend',
        expiresAtMs: 1_800_000_000_000,
      });
    });

    it('keeps a given UUID id and refuses a malformed one', async () => {
      const id = '0b6f2c3e-8a4d-4c1e-9f0a-123456789abc';
      expect((await store.createEntry(newEntry({ id }))).id).toBe(id);
      await expectCode(store.createEntry(newEntry({ id: 'entry-1', hint: 'x' })), 'ERR_INPUT_INVALID');
      await expectCode(
        store.createEntry(newEntry({ id: id.toUpperCase(), spiffeId: `${TD}/other` })),
        'ERR_INPUT_INVALID',
      );
    });

    it('refuses an id that is already taken', async () => {
      const id = '0b6f2c3e-8a4d-4c1e-9f0a-123456789abc';
      await store.createEntry(newEntry({ id }));
      await expectCode(store.createEntry(newEntry({ id, spiffeId: `${TD}/other` })), 'ERR_ENTRY_DUPLICATE');
      expect(await store.countEntries()).toBe(1);
    });

    it('refuses entries without selectors or with invalid ones', async () => {
      await expectCode(store.createEntry(newEntry({ selectors: [] })), 'ERR_INPUT_INVALID');
      await expectCode(
        store.createEntry(newEntry({ selectors: [{ type: 'Bad Type', value: 'x' }] })),
        'ERR_SELECTOR_INVALID',
      );
      expect(await store.countEntries()).toBe(0);
    });

    it('refuses field values the store cannot hold', async () => {
      await expectCode(store.createEntry(newEntry({ x509SvidTtlMs: -1 })), 'ERR_INPUT_INVALID');
      await expectCode(store.createEntry(newEntry({ expiresAtMs: 1.5 })), 'ERR_INPUT_INVALID');
      await expectCode(
        store.createEntry(newEntry({ dnsNames: [42] as unknown as string[] })),
        'ERR_INPUT_INVALID',
      );
      const created = await store.createEntry(newEntry());
      await expectCode(store.updateEntry(created.id, { jwtSvidTtlMs: Number.NaN }), 'ERR_INPUT_INVALID');
      expect(await store.fetchEntry(created.id)).toEqual(created);
    });

    it('reports a missing entry as ERR_ENTRY_NOT_FOUND', async () => {
      await expectCode(store.fetchEntry('0b6f2c3e-8a4d-4c1e-9f0a-123456789abc'), 'ERR_ENTRY_NOT_FOUND');
      await expectCode(store.fetchEntry('not-a-uuid'), 'ERR_ENTRY_NOT_FOUND');
    });

    it('round-trips selector values that contain colons', async () => {
      const created = await store.createEntry(newEntry({ selectors: sels('k8s:pod-label:app:web') }));
      expect((await store.fetchEntry(created.id)).selectors).toEqual([
        { type: 'k8s', value: 'pod-label:app:web' },
      ]);
      const found = await store.listEntries({
        selectors: { selectors: sels('k8s:pod-label:app:web'), match: 'exact' },
      });
      expect(found.items.map((e) => e.id)).toEqual([created.id]);
    });
  });

  describe('entries: duplicates', () => {
    it('refuses the same spiffe id, parent and selectors, whatever the selector order', async () => {
      await store.createEntry(newEntry({ selectors: sels('unix:uid:1000', 'unix:gid:50') }));
      await expectCode(
        store.createEntry(
          newEntry({ selectors: sels('unix:gid:50', 'unix:uid:1000'), hint: 'other fields' }),
        ),
        'ERR_ENTRY_DUPLICATE',
      );
      await expectCode(
        store.createEntry(newEntry({ selectors: sels('unix:gid:50', 'unix:uid:1000', 'unix:gid:50') })),
        'ERR_ENTRY_DUPLICATE',
      );
      expect(await store.countEntries()).toBe(1);
    });

    it('accepts the same selectors under another parent or spiffe id, and a different selector set', async () => {
      await store.createEntry(newEntry({ selectors: sels('unix:uid:1000', 'unix:gid:50') }));
      await store.createEntry(
        newEntry({ parentId: OTHER_PARENT, selectors: sels('unix:uid:1000', 'unix:gid:50') }),
      );
      await store.createEntry(
        newEntry({ spiffeId: `${TD}/workload/other`, selectors: sels('unix:uid:1000', 'unix:gid:50') }),
      );
      await store.createEntry(newEntry({ selectors: sels('unix:uid:1000') }));
      await store.createEntry(newEntry({ selectors: sels('unix:uid:1000', 'unix:gid:50', 'unix:gid:51') }));
      expect(await store.countEntries()).toBe(5);
    });

    it('lets exactly one of two racing identical creates win', async () => {
      const results = await Promise.allSettled([
        store.createEntry(newEntry()),
        store.createEntry(newEntry()),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.find((r) => r.status === 'rejected');
      expect(rejected?.reason).toMatchObject({ code: 'ERR_ENTRY_DUPLICATE' });
    });
  });

  describe('entries: update and delete', () => {
    it('changes only the given fields, takes a new revision and keeps id and createdAtMs', async () => {
      const created = await store.createEntry(newEntry({ hint: 'a', expiresAtMs: 1_800_000_000_000 }));
      const updated = await store.updateEntry(created.id, {
        hint: 'b',
        selectors: sels('unix:uid:2000', 'unix:gid:7'),
        expiresAtMs: null,
        admin: true,
      });
      expect(updated).toEqual({
        ...created,
        hint: 'b',
        selectors: sels('unix:gid:7', 'unix:uid:2000'),
        expiresAtMs: null,
        admin: true,
        revision: updated.revision,
      });
      expect(updated.revision).toBeGreaterThan(created.revision);
      expect(await store.fetchEntry(created.id)).toEqual(updated);
    });

    it('moves the entry in selector filters when its selectors change', async () => {
      const created = await store.createEntry(newEntry({ selectors: sels('unix:uid:1000') }));
      await store.updateEntry(created.id, { selectors: sels('unix:uid:2000') });
      const oldSel = await store.listEntries({
        selectors: { selectors: sels('unix:uid:1000'), match: 'any' },
      });
      const newSel = await store.listEntries({
        selectors: { selectors: sels('unix:uid:2000'), match: 'any' },
      });
      expect(oldSel.items).toEqual([]);
      expect(newSel.items.map((e) => e.id)).toEqual([created.id]);
    });

    it('refuses an update that would collide and leaves the entry and revision unchanged', async () => {
      await store.createEntry(newEntry({ selectors: sels('unix:uid:1000', 'unix:gid:50') }));
      const other = await store.createEntry(newEntry({ selectors: sels('unix:uid:2000') }));
      const revision = await store.currentRevision();
      await expectCode(
        store.updateEntry(other.id, { selectors: sels('unix:gid:50', 'unix:uid:1000'), hint: 'changed' }),
        'ERR_ENTRY_DUPLICATE',
      );
      expect(await store.fetchEntry(other.id)).toEqual(other);
      expect(await store.currentRevision()).toBe(revision);
      const bySelector = await store.listEntries({
        selectors: { selectors: sels('unix:uid:2000'), match: 'any' },
      });
      expect(bySelector.items.map((e) => e.id)).toEqual([other.id]);
    });

    it('reports updating or deleting a missing entry as ERR_ENTRY_NOT_FOUND', async () => {
      const missing = '0b6f2c3e-8a4d-4c1e-9f0a-123456789abc';
      await expectCode(store.updateEntry(missing, { hint: 'x' }), 'ERR_ENTRY_NOT_FOUND');
      await expectCode(store.deleteEntry(missing), 'ERR_ENTRY_NOT_FOUND');
    });

    it('refuses an update that empties the selectors', async () => {
      const created = await store.createEntry(newEntry());
      await expectCode(store.updateEntry(created.id, { selectors: [] }), 'ERR_INPUT_INVALID');
      expect(await store.fetchEntry(created.id)).toEqual(created);
    });

    it('deletes an entry and returns it; its selectors no longer match', async () => {
      const created = await store.createEntry(newEntry());
      expect(await store.deleteEntry(created.id)).toEqual(created);
      await expectCode(store.fetchEntry(created.id), 'ERR_ENTRY_NOT_FOUND');
      await expectCode(store.deleteEntry(created.id), 'ERR_ENTRY_NOT_FOUND');
      const bySelector = await store.listEntries({
        selectors: { selectors: sels('unix:uid:1000'), match: 'any' },
      });
      expect(bySelector.items).toEqual([]);
      // The same identity can be registered again once deleted.
      await store.createEntry(newEntry());
      expect(await store.countEntries()).toBe(1);
    });
  });

  describe('entries: batches', () => {
    it('creates each item on its own and reports results in input order', async () => {
      const existing = await store.createEntry(newEntry({ selectors: sels('unix:uid:1') }));
      const results = await store.createEntries([
        newEntry({ selectors: sels('unix:uid:2') }),
        newEntry({ selectors: sels('unix:uid:1') }),
        newEntry({ selectors: sels('unix:uid:3') }),
        newEntry({ selectors: sels('unix:uid:2') }),
        newEntry({ selectors: [] }),
        newEntry({ selectors: sels('unix:uid:4') }),
      ]);
      expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual([
        'ok',
        'ERR_ENTRY_DUPLICATE',
        'ok',
        'ERR_ENTRY_DUPLICATE',
        'ERR_INPUT_INVALID',
        'ok',
      ]);
      expect(await store.countEntries()).toBe(4);
      for (const r of results) if (r.ok) expect(await store.fetchEntry(r.value.id)).toEqual(r.value);
      expect(await store.fetchEntry(existing.id)).toEqual(existing);
    });

    it('deletes each id on its own, reporting missing ones', async () => {
      const a = await store.createEntry(newEntry({ selectors: sels('unix:uid:1') }));
      const b = await store.createEntry(newEntry({ selectors: sels('unix:uid:2') }));
      const c = await store.createEntry(newEntry({ selectors: sels('unix:uid:3') }));
      const missing = '0b6f2c3e-8a4d-4c1e-9f0a-123456789abc';
      const results = await store.deleteEntries([a.id, missing, c.id, a.id]);
      expect(results.map((r) => (r.ok ? r.value.id : r.error.code))).toEqual([
        a.id,
        'ERR_ENTRY_NOT_FOUND',
        c.id,
        'ERR_ENTRY_NOT_FOUND',
      ]);
      expect((await store.listEntries({})).items.map((e) => e.id)).toEqual([b.id]);
    });

    it('returns an empty result for an empty batch', async () => {
      expect(await store.createEntries([])).toEqual([]);
      expect(await store.deleteEntries([])).toEqual([]);
    });
  });

  describe('entries: revisions', () => {
    it('starts at 0 and increases strictly with every create, update and delete', async () => {
      expect(await store.currentRevision()).toBe(0);
      const seen: number[] = [];
      const a = await store.createEntry(newEntry({ selectors: sels('unix:uid:1') }));
      seen.push(a.revision, await store.currentRevision());
      const b = await store.createEntry(newEntry({ selectors: sels('unix:uid:2') }));
      seen.push(b.revision, await store.currentRevision());
      const a2 = await store.updateEntry(a.id, { hint: 'x' });
      seen.push(a2.revision, await store.currentRevision());
      const before = await store.currentRevision();
      await store.deleteEntry(b.id);
      const afterDelete = await store.currentRevision();
      expect(afterDelete).toBeGreaterThan(before);
      const c = await store.createEntry(newEntry({ selectors: sels('unix:uid:3') }));
      seen.push(c.revision);
      // Each write's entry revision is the store revision right after it.
      expect(seen).toEqual([
        a.revision,
        a.revision,
        b.revision,
        b.revision,
        a2.revision,
        a2.revision,
        c.revision,
      ]);
      for (let i = 2; i < seen.length; i += 2) expect(seen[i]!).toBeGreaterThan(seen[i - 2]!);
      expect(c.revision).toBeGreaterThan(afterDelete);
    });

    it('does not consume a revision on a refused write', async () => {
      await store.createEntry(newEntry());
      const revision = await store.currentRevision();
      await expectCode(store.createEntry(newEntry()), 'ERR_ENTRY_DUPLICATE');
      expect(await store.currentRevision()).toBe(revision);
    });

    it('keeps entries and the revision across a reopen, and continues above it', async () => {
      const a = await store.createEntry(newEntry({ selectors: sels('unix:uid:1') }));
      const updated = await store.updateEntry(a.id, { hint: 'updated' });
      const revision = await store.currentRevision();
      const reopened = await h.reopen();
      expect(await reopened.currentRevision()).toBe(revision);
      expect(await reopened.fetchEntry(a.id)).toEqual(updated);
      const b = await reopened.createEntry(newEntry({ selectors: sels('unix:uid:2') }));
      expect(b.revision).toBeGreaterThan(revision);
    });
  });

  describe('entries: prune', () => {
    it('deletes entries that expired before nowMs, and only those', async () => {
      const now = 1_750_000_000_000;
      const expired = await store.createEntry(
        newEntry({ selectors: sels('unix:uid:1'), expiresAtMs: now - 1 }),
      );
      const atNow = await store.createEntry(newEntry({ selectors: sels('unix:uid:2'), expiresAtMs: now }));
      const later = await store.createEntry(
        newEntry({ selectors: sels('unix:uid:3'), expiresAtMs: now + 1 }),
      );
      const never = await store.createEntry(newEntry({ selectors: sels('unix:uid:4'), expiresAtMs: null }));
      const revision = await store.currentRevision();
      expect(await store.pruneEntries(now)).toBe(1);
      await expectCode(store.fetchEntry(expired.id), 'ERR_ENTRY_NOT_FOUND');
      const left = (await store.listEntries({})).items.map((e) => e.id).sort();
      expect(left).toEqual([atNow.id, later.id, never.id].sort());
      expect(await store.currentRevision()).toBeGreaterThan(revision);
      expect(await store.pruneEntries(now)).toBe(0);
      const selectorGone = await store.listEntries({
        selectors: { selectors: sels('unix:uid:1'), match: 'any' },
      });
      expect(selectorGone.items).toEqual([]);
    });
  });
}
