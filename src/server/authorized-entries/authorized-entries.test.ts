import { describe, expect, it, vi } from 'vitest';
import { isSigilError } from '../../spiffe/errors.js';
import {
  AGENT,
  applyDelta,
  emptyIndex,
  ids,
  makeEntry,
  OTHER_AGENT,
  SERVER_ID,
  sel,
  TD,
} from './fixtures.test-support.js';
import { AuthorizedEntries, type EntryDelta } from './index.js';

const nodeRecord = (spiffeId: string) => ({
  spiffeId,
  attestationType: 'join_token',
  certSerial: '01',
  certNotAfterMs: 0,
  selectors: [],
  banned: false,
  canReattest: false,
  createdAtMs: 0,
  updatedAtMs: 0,
});

const W = (name: string) => `${TD}/w/${name}`;
const NODE_SET = `${TD}/node-set/linux`;

async function withAgents(options = {}) {
  const f = await emptyIndex(options);
  f.index.agentUpserted({ spiffeId: AGENT, selectors: sel('os:linux', 'zone:a', 'tier:web'), aliases: [] });
  f.index.agentUpserted({ spiffeId: OTHER_AGENT, selectors: sel('os:linux'), aliases: [] });
  return f;
}

describe('authorization rules', () => {
  it('authorizes entries parented to the agent itself, and only to that agent', async () => {
    const f = await withAgents();
    f.put({ id: 'e1', spiffeId: W('web'), parentId: AGENT });
    f.put({ id: 'e2', spiffeId: W('db'), parentId: OTHER_AGENT });
    expect(ids(f.index.entriesFor(AGENT))).toEqual(['e1']);
    expect(f.index.isAuthorized(AGENT, 'e2')).toBe(false);
    expect(f.index.explain(AGENT)).toEqual([{ entry: expect.objectContaining({ id: 'e1' }), via: [AGENT] }]);
  });

  it('gives an alias through a node entry only when the agent has all of its selectors', async () => {
    const f = await withAgents();
    f.put({ id: 'node', spiffeId: NODE_SET, parentId: SERVER_ID, selectors: ['os:linux', 'zone:a'] });
    f.put({ id: 'e1', spiffeId: W('web'), parentId: NODE_SET });
    // AGENT has os:linux, zone:a and more (superset): matched. OTHER_AGENT has only os:linux (subset): not.
    expect(f.index.aliasesOf(AGENT)).toEqual([NODE_SET]);
    expect(f.index.aliasesOf(OTHER_AGENT)).toEqual([]);
    expect(ids(f.index.entriesFor(AGENT))).toEqual(['e1']);
    expect(f.index.entriesFor(OTHER_AGENT)).toEqual([]);
    // The node entry itself is not a workload entry the agent gets.
    expect(f.index.isAuthorized(AGENT, 'node')).toBe(false);
    expect(f.index.explain(AGENT)[0]!.via).toEqual([NODE_SET]);
  });

  it('matches an agent attested after the node entry was written', async () => {
    const f = await emptyIndex();
    f.put({ id: 'node', spiffeId: NODE_SET, parentId: SERVER_ID, selectors: ['os:linux'] });
    f.put({ id: 'e1', spiffeId: W('web'), parentId: NODE_SET });
    f.index.agentUpserted({ spiffeId: AGENT, selectors: sel('os:linux', 'zone:a'), aliases: [] });
    expect(ids(f.index.entriesFor(AGENT))).toEqual(['e1']);
  });

  it('authorizes entries parented to a join-token alias given at attestation', async () => {
    const f = await emptyIndex();
    const alias = `${TD}/host/db-1`;
    f.put({ id: 'e1', spiffeId: W('db'), parentId: alias });
    expect(f.index.entriesFor(AGENT)).toEqual([]);
    f.index.agentUpserted({ spiffeId: AGENT, selectors: [], aliases: [alias] });
    expect(f.index.aliasesOf(AGENT)).toEqual([alias]);
    expect(f.index.attestationAliasesOf(AGENT)).toEqual([alias]);
    expect(f.index.explain(AGENT)).toEqual([{ entry: expect.objectContaining({ id: 'e1' }), via: [alias] }]);
  });

  it('follows nested chains three deep, whatever order the entries are written in', async () => {
    const f = await withAgents();
    f.put({ id: 'e3', spiffeId: W('leaf'), parentId: W('mid') });
    f.put({ id: 'e2', spiffeId: W('mid'), parentId: W('top') });
    expect(f.index.entriesFor(AGENT)).toEqual([]);
    f.put({ id: 'e1', spiffeId: W('top'), parentId: AGENT });
    expect(ids(f.index.entriesFor(AGENT))).toEqual(['e1', 'e2', 'e3']);
    const leaf = f.index.explain(AGENT).find((a) => a.entry.id === 'e3')!;
    expect(leaf.via).toEqual([AGENT, W('top'), W('mid')]);
    expect(f.index.entriesFor(OTHER_AGENT)).toEqual([]);
  });

  it('terminates on cycles and self-parented entries', async () => {
    const f = await withAgents();
    f.put({ id: 'a', spiffeId: W('x'), parentId: AGENT });
    f.put({ id: 'b', spiffeId: W('y'), parentId: W('x') });
    f.put({ id: 'c', spiffeId: W('x'), parentId: W('y') });
    f.put({ id: 'd', spiffeId: W('y'), parentId: W('y') });
    // "e" would issue the agent's own ID: reserved, so it is not served and closes no cycle.
    f.put({ id: 'e', spiffeId: AGENT, parentId: W('y') });
    expect(ids(f.index.entriesFor(AGENT))).toEqual(['a', 'b', 'c', 'd']);
    f.remove('a');
    // The cycle x <-> y no longer hangs from the agent: all of it goes.
    expect(f.index.entriesFor(AGENT)).toEqual([]);
  });
});

describe("Sigil's reserved IDs", () => {
  it('never serves an entry naming the server or an agent, nor grants it as an alias', async () => {
    const f = await withAgents();
    f.put({ id: 'server', spiffeId: SERVER_ID, parentId: AGENT });
    f.put({ id: 'root', spiffeId: `${TD}/sigil`, parentId: AGENT });
    f.put({ id: 'node', spiffeId: `${TD}/sigil/agent/x`, parentId: SERVER_ID, selectors: ['os:linux'] });
    f.put({ id: 'child', spiffeId: W('web'), parentId: `${TD}/sigil/agent/x` });
    expect(f.index.entriesFor(AGENT)).toEqual([]);
    expect(f.index.aliasesOf(AGENT)).toEqual([]);
  });

  it('drops an entry, with a tombstone, when an update moves it into the reserved namespace', async () => {
    const f = await withAgents();
    f.put({ id: 'e1', spiffeId: W('web'), parentId: AGENT });
    const deltas: EntryDelta[] = [];
    f.index.subscribe(AGENT, (d) => deltas.push(d));
    f.put({ id: 'e1', spiffeId: SERVER_ID, parentId: AGENT });
    expect(f.index.entriesFor(AGENT)).toEqual([]);
    expect(deltas.map((d) => d.deletedIds)).toEqual([['e1']]);
  });

  it('leaves stored reserved entries out at load and reports them', async () => {
    const stored = [
      makeEntry({ id: 'bad', spiffeId: SERVER_ID, parentId: AGENT }, 1),
      makeEntry({ id: 'good', spiffeId: W('web'), parentId: AGENT }, 2),
    ];
    const ignored: string[][] = [];
    const index = await AuthorizedEntries.load(
      {
        currentRevision: async () => 2,
        listEntries: async () => ({ items: stored }),
        listNodes: async () => ({
          items: [{ ...nodeRecord(AGENT), selectors: sel('os:linux') }],
        }),
      },
      SERVER_ID,
      { onReservedEntriesIgnored: (entries) => ignored.push(entries.map((e) => e.id)) },
    );
    expect(ids(index.entriesFor(AGENT))).toEqual(['good']);
    expect(ignored).toEqual([['bad']]);
  });
});

describe('changes', () => {
  it('removes the alias and its descendants when a node entry stops matching, with tombstones', async () => {
    const f = await withAgents();
    f.put({ id: 'node', spiffeId: NODE_SET, parentId: SERVER_ID, selectors: ['os:linux', 'zone:a'] });
    f.put({ id: 'e1', spiffeId: W('web'), parentId: NODE_SET });
    f.put({ id: 'e2', spiffeId: W('sidecar'), parentId: W('web') });
    f.put({ id: 'direct', spiffeId: W('own'), parentId: AGENT });
    const synced = f.revision;
    const deltas: EntryDelta[] = [];
    f.index.subscribe(AGENT, (d) => deltas.push(d));
    f.put({ id: 'node', spiffeId: NODE_SET, parentId: SERVER_ID, selectors: ['os:linux', 'zone:b'] });
    expect(f.index.aliasesOf(AGENT)).toEqual([]);
    expect(ids(f.index.entriesFor(AGENT))).toEqual(['direct']);
    expect(deltas).toEqual([{ upserted: [], deletedIds: ['e1', 'e2'], revision: f.revision }]);
    expect(f.index.changesSince(AGENT, synced)).toEqual({
      kind: 'delta',
      delta: { upserted: [], deletedIds: ['e1', 'e2'], revision: f.revision },
    });
  });

  it('re-evaluates node entries when the agent re-attests with other selectors', async () => {
    const f = await withAgents();
    f.put({ id: 'node', spiffeId: NODE_SET, parentId: SERVER_ID, selectors: ['zone:a'] });
    f.put({ id: 'e1', spiffeId: W('web'), parentId: NODE_SET });
    const synced = f.revision;
    const deltas: EntryDelta[] = [];
    f.index.subscribe(AGENT, (d) => deltas.push(d));
    f.index.agentUpserted({ spiffeId: AGENT, selectors: sel('os:linux', 'zone:b'), aliases: [] });
    expect(f.index.entriesFor(AGENT)).toEqual([]);
    expect(deltas).toEqual([{ upserted: [], deletedIds: ['e1'], revision: synced }]);
    // The change took no revision, so "since synced" cannot say whether it is included: snapshot.
    expect(f.index.changesSince(AGENT, synced)).toEqual({ kind: 'snapshot', entries: [], revision: synced });
    f.index.agentUpserted({ spiffeId: AGENT, selectors: sel('zone:a'), aliases: [] });
    expect(ids(f.index.entriesFor(AGENT))).toEqual(['e1']);
  });

  it('tombstones a deleted entry and everything that hung from it', async () => {
    const f = await withAgents();
    f.put({ id: 'top', spiffeId: W('top'), parentId: AGENT });
    f.put({ id: 'mid', spiffeId: W('mid'), parentId: W('top') });
    f.put({ id: 'keep', spiffeId: W('keep'), parentId: AGENT });
    const synced = f.revision;
    f.remove('top');
    expect(ids(f.index.entriesFor(AGENT))).toEqual(['keep']);
    expect(f.index.changesSince(AGENT, synced)).toEqual({
      kind: 'delta',
      delta: { upserted: [], deletedIds: ['mid', 'top'], revision: f.revision },
    });
  });

  it('sends a metadata-only update as an upsert of the same id, never as a new entry', async () => {
    const f = await withAgents();
    f.put({ id: 'e1', spiffeId: W('web'), parentId: AGENT });
    const synced = f.revision;
    const deltas: EntryDelta[] = [];
    f.index.subscribe(AGENT, (d) => deltas.push(d));
    const updated = f.put({ id: 'e1', spiffeId: W('web'), parentId: AGENT, hint: 'frontend' });
    expect(deltas).toEqual([{ upserted: [updated], deletedIds: [], revision: updated.revision }]);
    expect(f.index.entriesFor(AGENT)).toEqual([updated]);
    expect(f.index.changesSince(AGENT, synced)).toEqual({
      kind: 'delta',
      delta: { upserted: [updated], deletedIds: [], revision: updated.revision },
    });
  });

  it('moves a re-parented entry from one agent to the other', async () => {
    const f = await withAgents();
    f.put({ id: 'e1', spiffeId: W('web'), parentId: AGENT });
    f.put({ id: 'e2', spiffeId: W('child'), parentId: W('web') });
    const moved = f.put({ id: 'e1', spiffeId: W('web'), parentId: OTHER_AGENT });
    expect(f.index.entriesFor(AGENT)).toEqual([]);
    expect(ids(f.index.entriesFor(OTHER_AGENT))).toEqual(['e1', 'e2']);
    expect(f.index.entriesFor(OTHER_AGENT)[0]).toBe(moved);
  });

  it('resumes from any revision in the window and falls back to a snapshot outside it', async () => {
    const f = await withAgents({ changeLogRevisions: 5 });
    f.put({ id: 'e1', spiffeId: W('a'), parentId: AGENT });
    const r1 = f.revision;
    f.put({ id: 'e2', spiffeId: W('b'), parentId: AGENT });
    const r2 = f.revision;
    f.remove('e1');
    f.bump();
    const since = (r: number) => f.index.changesSince(AGENT, r);
    expect(since(r1)).toEqual({
      kind: 'delta',
      delta: { upserted: [expect.objectContaining({ id: 'e2' })], deletedIds: ['e1'], revision: f.revision },
    });
    expect(since(r2)).toEqual({
      kind: 'delta',
      delta: { upserted: [], deletedIds: ['e1'], revision: f.revision },
    });
    expect(since(f.revision)).toEqual({
      kind: 'delta',
      delta: { upserted: [], deletedIds: [], revision: f.revision },
    });
    expect(since(0).kind).toBe('snapshot');
    expect(since(f.revision + 1).kind).toBe('snapshot');
    for (let i = 0; i < 5; i++) f.bump();
    // r1 is now more than 5 revisions back.
    expect(since(r1)).toEqual({
      kind: 'snapshot',
      entries: [expect.objectContaining({ id: 'e2' })],
      revision: f.revision,
    });
    expect(since(f.revision - 5).kind).toBe('delta');
  });

  it('refuses a change log window that is not a positive integer', async () => {
    const err = await emptyIndex({ changeLogRevisions: 0 }).catch((e: unknown) => e);
    expect(isSigilError(err, 'ERR_CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toBe(
      'authorized entries: changeLogRevisions must be a positive integer (got "0")',
    );
  });

  it('refuses writes out of revision order', async () => {
    const f = await withAgents();
    f.put({ id: 'e1', spiffeId: W('a'), parentId: AGENT });
    f.put({ id: 'e2', spiffeId: W('b'), parentId: AGENT });
    let err: unknown;
    try {
      f.index.entryUpserted(makeEntry({ id: 'e3', spiffeId: W('c'), parentId: AGENT }, 1));
    } catch (e) {
      err = e;
    }
    expect(isSigilError(err, 'ERR_REVISION_CONFLICT')).toBe(true);
    expect((err as Error).message).toBe(
      'authorized entries: a write at revision "1" arrived after revision 2; apply writes in revision order',
    );
    expect(f.index.isAuthorized(AGENT, 'e3')).toBe(false);
  });
});

describe('subscriptions', () => {
  it('delivers deltas only to the agents a write affects', async () => {
    const f = await withAgents();
    const mine = vi.fn();
    const theirs = vi.fn();
    const unsubscribe = f.index.subscribe(AGENT, mine);
    f.index.subscribe(OTHER_AGENT, theirs);
    const e1 = f.put({ id: 'e1', spiffeId: W('a'), parentId: AGENT });
    f.put({ id: 'x', spiffeId: W('x'), parentId: `${TD}/nobody` });
    expect(mine).toHaveBeenCalledTimes(1);
    expect(mine).toHaveBeenCalledWith({ upserted: [e1], deletedIds: [], revision: e1.revision });
    expect(theirs).not.toHaveBeenCalled();
    unsubscribe();
    f.put({ id: 'e2', spiffeId: W('b'), parentId: AGENT });
    expect(mine).toHaveBeenCalledTimes(1);
  });

  it('tells an evicted agent to drop everything, and keeps the stream through re-attestation', async () => {
    const f = await withAgents();
    f.put({ id: 'e1', spiffeId: W('a'), parentId: AGENT });
    const state = new Map(f.index.entriesFor(AGENT).map((e) => [e.id, e]));
    f.index.subscribe(AGENT, (d) => applyDelta(state, d));
    f.index.agentRemoved(AGENT);
    expect(state.size).toBe(0);
    expect(f.index.entriesFor(AGENT)).toEqual([]);
    f.index.agentUpserted({ spiffeId: AGENT, selectors: sel('os:linux'), aliases: [] });
    expect([...state.keys()]).toEqual(['e1']);
  });

  it('drops a listener that throws and reports its error, still serving the others', async () => {
    const onListenerError = vi.fn();
    const f = await withAgents({ onListenerError });
    const broken = vi.fn(() => {
      throw new Error('stream closed');
    });
    const healthy = vi.fn();
    f.index.subscribe(AGENT, broken);
    f.index.subscribe(AGENT, healthy);
    f.put({ id: 'e1', spiffeId: W('a'), parentId: AGENT });
    f.put({ id: 'e2', spiffeId: W('b'), parentId: AGENT });
    expect(broken).toHaveBeenCalledTimes(1);
    expect(healthy).toHaveBeenCalledTimes(2);
    expect(onListenerError).toHaveBeenCalledWith(new Error('stream closed'), AGENT);
  });
});
