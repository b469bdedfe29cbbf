// Conformance: commitAttestation spends the join token, records the node and creates the alias
// entries in one transaction, or changes nothing at all.
import { beforeEach, describe, expect, it } from 'vitest';
import type { AttestationCommit, DataStore } from '../types.js';
import { type ConformanceContext, expectCode, newEntry, node, sels, TD } from './support.js';

const NOW = 1_750_000_000_000;
const AGENT = `${TD}/sigil/agent/join_token/tok-a`;
const SERVER = `${TD}/sigil/server`;

function aliasOf(alias: string, agentId = AGENT) {
  return newEntry({ spiffeId: alias, parentId: SERVER, selectors: sels(`spiffe_id:${agentId}`) });
}

function commitFor(overrides: Partial<AttestationCommit> = {}): AttestationCommit {
  return {
    joinToken: 'tok-a',
    nowMs: NOW,
    node: node(AGENT, { selectors: sels(`spiffe_id:${AGENT}`) }),
    aliasEntries: [aliasOf(`${TD}/rack/7`)],
    ...overrides,
  };
}

export function describeAttestationConformance(ctx: ConformanceContext): void {
  let store: DataStore;

  /** Everything a commit could have touched, for "nothing changed" checks. */
  const snapshot = async () => ({
    tokens: await store.listJoinTokens(),
    nodes: (await store.listNodes()).items,
    entries: (await store.listEntries({})).items,
    revision: await store.currentRevision(),
  });

  describe('attestation commits', () => {
    beforeEach(async () => {
      store = ctx.store;
      await store.createJoinToken({
        token: 'tok-a',
        expiresAtMs: NOW + 60_000,
        spiffeId: null,
        createdAtMs: NOW,
      });
    });

    it('spends the token, writes the node and creates the alias entries together', async () => {
      const committed = await store.commitAttestation(commitFor());
      expect(committed.node).toEqual(await store.fetchNode(AGENT));
      expect(committed.createdEntries.map((e) => e.spiffeId)).toEqual([`${TD}/rack/7`]);
      expect(await store.listJoinTokens()).toEqual([]);
      expect((await store.listEntries({})).items).toEqual(committed.createdEntries);
    });

    it('spends a token once: a second commit with it changes nothing', async () => {
      await store.commitAttestation(commitFor());
      const before = await snapshot();
      await expectCode(
        store.commitAttestation(commitFor({ node: node(`${TD}/sigil/agent/other`) })),
        'ERR_TOKEN_NOT_FOUND',
      );
      expect(await snapshot()).toEqual(before);
    });

    it('gives exactly one of two racing commits the token', async () => {
      const results = await Promise.allSettled([
        store.commitAttestation(commitFor({ aliasEntries: [aliasOf(`${TD}/a`)] })),
        store.commitAttestation(commitFor({ aliasEntries: [aliasOf(`${TD}/b`)] })),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect((await store.listEntries({})).items).toHaveLength(1);
    });

    it('refuses an expired token and changes nothing', async () => {
      const before = await snapshot();
      await expectCode(store.commitAttestation(commitFor({ nowMs: NOW + 60_000 })), 'ERR_TOKEN_EXPIRED');
      expect(await snapshot()).toEqual(before);
    });

    it('rolls everything back when an alias entry cannot be stored', async () => {
      const before = await snapshot();
      const broken = { ...aliasOf(`${TD}/rack/7`), id: 'not-a-uuid' };
      await expectCode(store.commitAttestation(commitFor({ aliasEntries: [broken] })), 'ERR_INPUT_INVALID');
      expect(await snapshot()).toEqual(before);
    });

    it('never overwrites a ban made meanwhile', async () => {
      await store.upsertNode(node(AGENT));
      await store.banNode(AGENT, NOW);
      const before = await snapshot();
      await expectCode(store.commitAttestation(commitFor()), 'ERR_PERMISSION_DENIED');
      expect(await snapshot()).toEqual(before);
    });

    it('keeps an alias entry that already exists, and commits without a token', async () => {
      await store.commitAttestation(commitFor());
      const again = await store.commitAttestation(commitFor({ joinToken: undefined }));
      expect(again.createdEntries).toEqual([]);
      expect((await store.listEntries({})).items).toHaveLength(1);
    });
  });
}
