// Conformance: nodes (upsert, evict, ban), join tokens, bundles, the CA journal, and close.
import { beforeEach, describe, expect, it } from 'vitest';
import type { DataStore, Page } from '../types.js';
import {
  type ConformanceContext,
  type ConformanceHarness,
  expectCode,
  newEntry,
  node,
  sels,
  TD,
} from './support.js';

export function describeResourceConformance(ctx: ConformanceContext): void {
  let store: DataStore;
  let h: ConformanceHarness;
  beforeEach(() => {
    store = ctx.store;
    h = ctx.harness;
  });

  describe('nodes', () => {
    it('upserts, fetches and replaces a node record', async () => {
      const first = await store.upsertNode(node(`${TD}/agent/n1`, { selectors: sels('x:2', 'x:1') }));
      expect(first.selectors).toEqual(sels('x:1', 'x:2'));
      expect(await store.fetchNode(`${TD}/agent/n1`)).toEqual(first);
      const replaced = await store.upsertNode(
        node(`${TD}/agent/n1`, {
          certSerial: 'ff',
          selectors: sels('y:1'),
          canReattest: true,
          updatedAtMs: 5,
        }),
      );
      expect(replaced).toMatchObject({
        certSerial: 'ff',
        selectors: sels('y:1'),
        canReattest: true,
        updatedAtMs: 5,
      });
      expect(await store.fetchNode(`${TD}/agent/n1`)).toEqual(replaced);
    });

    it('keeps the issuing authority of the current SVID, and drops it when a write omits it', async () => {
      const plain = await store.upsertNode(node(`${TD}/agent/n1`));
      expect(plain).not.toHaveProperty('x509AuthorityId');
      const stamped = await store.upsertNode(node(`${TD}/agent/n1`, { x509AuthorityId: 'ab12' }));
      expect(stamped.x509AuthorityId).toBe('ab12');
      expect((await store.fetchNode(`${TD}/agent/n1`)).x509AuthorityId).toBe('ab12');
      const { node: committed } = await store.commitAttestation({
        nowMs: 1_700_000_000_000,
        node: node(`${TD}/agent/n2`, { x509AuthorityId: 'cd34' }),
        aliasEntries: [],
      });
      expect(committed.x509AuthorityId).toBe('cd34');
      expect((await store.upsertNode(node(`${TD}/agent/n1`))).x509AuthorityId).toBeUndefined();
    });

    it('accepts a node without selectors', async () => {
      const n = await store.upsertNode(node(`${TD}/agent/n1`, { selectors: [] }));
      expect((await store.fetchNode(n.spiffeId)).selectors).toEqual([]);
    });

    it('reports a missing node as ERR_NODE_NOT_FOUND', async () => {
      await expectCode(store.fetchNode(`${TD}/agent/none`), 'ERR_NODE_NOT_FOUND');
      await expectCode(store.deleteNode(`${TD}/agent/none`), 'ERR_NODE_NOT_FOUND');
      await expectCode(store.banNode(`${TD}/agent/none`, 1), 'ERR_NODE_NOT_FOUND');
    });

    it('evicts a node by deleting its record', async () => {
      const n = await store.upsertNode(node(`${TD}/agent/n1`));
      expect(await store.deleteNode(n.spiffeId)).toEqual(n);
      await expectCode(store.fetchNode(n.spiffeId), 'ERR_NODE_NOT_FOUND');
      // Re-attestation after eviction creates it afresh.
      await store.upsertNode(node(n.spiffeId, { selectors: sels('z:1') }));
      expect((await store.fetchNode(n.spiffeId)).selectors).toEqual(sels('z:1'));
    });

    it('bans a node: keeps the record, clears the serial, marks it banned', async () => {
      const n = await store.upsertNode(node(`${TD}/agent/n1`));
      const banned = await store.banNode(n.spiffeId, 1_700_000_500_000);
      expect(banned).toEqual({ ...n, certSerial: '', banned: true, updatedAtMs: 1_700_000_500_000 });
      expect(await store.fetchNode(n.spiffeId)).toEqual(banned);
    });

    it('lists nodes in pages, each once', async () => {
      for (let i = 0; i < 5; i++) await store.upsertNode(node(`${TD}/agent/n${i}`));
      const seen: string[] = [];
      let page: Page = { pageSize: 2 };
      for (;;) {
        const result = await store.listNodes(page);
        seen.push(...result.items.map((n) => n.spiffeId));
        if (result.nextPageToken === undefined) break;
        page = { pageSize: 2, pageToken: result.nextPageToken };
      }
      expect(seen).toEqual([0, 1, 2, 3, 4].map((i) => `${TD}/agent/n${i}`));
      expect((await store.listNodes()).items).toHaveLength(5);
    });
  });

  describe('join tokens', () => {
    const NOW = 1_750_000_000_000;
    const token = (value: string, expiresAtMs: number, spiffeId: string | null = null) => ({
      token: value,
      expiresAtMs,
      spiffeId,
      createdAtMs: NOW - 1000,
    });

    it('creates and lists tokens', async () => {
      const a = await store.createJoinToken(token('tok-a', NOW + 60_000, `${TD}/alias`));
      await store.createJoinToken(token('tok-b', NOW + 60_000));
      expect(a).toEqual(token('tok-a', NOW + 60_000, `${TD}/alias`));
      const listed = await store.listJoinTokens();
      expect(listed.map((t) => t.token).sort()).toEqual(['tok-a', 'tok-b']);
      expect(listed.find((t) => t.token === 'tok-a')).toEqual(a);
    });

    it('refuses a token value that already exists', async () => {
      await store.createJoinToken(token('tok-a', NOW + 60_000));
      await expectCode(store.createJoinToken(token('tok-a', NOW + 90_000)), 'ERR_INPUT_INVALID');
    });

    it('fetches a token without spending it', async () => {
      await store.createJoinToken(token('tok-a', NOW + 60_000, `${TD}/alias`));
      expect(await store.fetchJoinToken('tok-a', NOW)).toEqual(token('tok-a', NOW + 60_000, `${TD}/alias`));
      expect(await store.fetchJoinToken('tok-a', NOW)).toEqual(token('tok-a', NOW + 60_000, `${TD}/alias`));
      await expectCode(store.fetchJoinToken('never-issued', NOW), 'ERR_TOKEN_NOT_FOUND');
    });

    it('refuses an expired token (at or after expiresAtMs)', async () => {
      await store.createJoinToken(token('tok-a', NOW));
      await expectCode(store.fetchJoinToken('tok-a', NOW), 'ERR_TOKEN_EXPIRED');
      expect(await store.fetchJoinToken('tok-a', NOW - 1)).toEqual(token('tok-a', NOW));
    });

    it('prunes expired tokens only', async () => {
      await store.createJoinToken(token('old', NOW - 1));
      await store.createJoinToken(token('edge', NOW));
      await store.createJoinToken(token('fresh', NOW + 1));
      expect(await store.pruneJoinTokens(NOW)).toBe(2);
      expect((await store.listJoinTokens()).map((t) => t.token)).toEqual(['fresh']);
    });
  });

  describe('bundles', () => {
    const bundle = (trustDomain: string, sequence: number) => ({
      trustDomain,
      bundleJson: JSON.stringify({ keys: [], spiffe_sequence: sequence }),
      sequence,
      updatedAtMs: 1_700_000_000_000 + sequence,
    });

    it('puts, fetches, replaces, lists and deletes bundles', async () => {
      expect(await store.fetchBundle('other.org')).toBeNull();
      expect(await store.putBundle(bundle('other.org', 1))).toEqual(bundle('other.org', 1));
      await store.putBundle(bundle('another.org', 1));
      expect(await store.fetchBundle('other.org')).toEqual(bundle('other.org', 1));
      await store.putBundle(bundle('other.org', 2));
      expect(await store.fetchBundle('other.org')).toEqual(bundle('other.org', 2));
      expect((await store.listBundles()).sort((x, y) => x.trustDomain.localeCompare(y.trustDomain))).toEqual([
        bundle('another.org', 1),
        bundle('other.org', 2),
      ]);
      await store.deleteBundle('other.org');
      expect(await store.fetchBundle('other.org')).toBeNull();
      await expectCode(store.deleteBundle('other.org'), 'ERR_BUNDLE_NOT_FOUND');
      expect(await store.listBundles()).toEqual([bundle('another.org', 1)]);
    });
  });

  describe('ca journal', () => {
    it('saves optimistically and refuses a stale version', async () => {
      expect(await store.loadJournal()).toBeNull();
      await expectCode(store.saveJournal('{"v":"x"}', 1), 'ERR_REVISION_CONFLICT');
      expect(await store.saveJournal('{"v":1}', 0)).toEqual({ data: '{"v":1}', version: 1 });
      await expectCode(store.saveJournal('{"v":"again"}', 0), 'ERR_REVISION_CONFLICT');
      expect(await store.saveJournal('{"v":2}', 1)).toEqual({ data: '{"v":2}', version: 2 });
      await expectCode(store.saveJournal('{"v":"stale"}', 1), 'ERR_REVISION_CONFLICT');
      expect(await store.loadJournal()).toEqual({ data: '{"v":2}', version: 2 });
    });

    it('keeps the journal across a reopen', async () => {
      await store.saveJournal('{"v":1}', 0);
      const reopened = await h.reopen();
      expect(await reopened.loadJournal()).toEqual({ data: '{"v":1}', version: 1 });
      await expectCode(reopened.saveJournal('{"v":"stale"}', 0), 'ERR_REVISION_CONFLICT');
    });
  });

  describe('close', () => {
    it('is idempotent, and later calls fail with ERR_DATASTORE', async () => {
      await store.close();
      await store.close();
      await expectCode(store.countEntries(), 'ERR_DATASTORE');
      await expectCode(store.createEntry(newEntry()), 'ERR_DATASTORE');
    });
  });
}
