import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { type AttestedNode, type DataStore, type NewEntry, openDataStore } from '../datastore/index.js';
import { AGENT, applyDelta, ids, SERVER_ID, sel, TD } from './fixtures.test-support.js';
import { AuthorizedEntries, type EntryDelta, observeEntryWrites } from './index.js';

const W = (name: string) => `${TD}/w/${name}`;

function newEntry(spiffeId: string, parentId: string, extra: Partial<NewEntry> = {}): NewEntry {
  return {
    spiffeId,
    parentId,
    selectors: sel('unix:uid:1000'),
    x509SvidTtlMs: 0,
    jwtSvidTtlMs: 0,
    dnsNames: [],
    federatesWith: [],
    admin: false,
    downstream: false,
    hint: '',
    expiresAtMs: null,
    ...extra,
  };
}

function node(spiffeId: string, selectors: string[], banned = false): AttestedNode {
  return {
    spiffeId,
    attestationType: 'join_token',
    certSerial: banned ? '' : '01',
    certNotAfterMs: 0,
    selectors: sel(...selectors),
    banned,
    canReattest: false,
    createdAtMs: 0,
    updatedAtMs: 0,
  };
}

describe('observeEntryWrites over SQLite', () => {
  let dir: string;
  let raw: DataStore;
  let store: DataStore;
  let index: AuthorizedEntries;
  const clock = new ManualClock();

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sigil-authz-'));
    raw = await openDataStore({ kind: 'sqlite', path: join(dir, 'store.sqlite3') }, clock);
    index = await AuthorizedEntries.load(raw, SERVER_ID);
    store = observeEntryWrites(raw, index);
  });

  afterEach(async () => {
    await raw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('updates the index on each entry write, with the revision the store assigned', async () => {
    await store.upsertNode(node(AGENT, ['os:linux']));
    const top = await store.createEntry(newEntry(W('top'), AGENT));
    const [child] = await store.createEntries([
      newEntry(W('child'), W('top')),
      newEntry(W('x'), `${TD}/nobody`),
    ]);
    expect(ids(index.entriesFor(AGENT))).toEqual([top.id, child!.ok ? child!.value.id : ''].sort());
    const synced = index.revision;
    expect(synced).toBe(await raw.currentRevision());
    await store.deleteEntry(top.id);
    expect(index.revision).toBe(await raw.currentRevision());
    expect(index.entriesFor(AGENT)).toEqual([]);
    const changes = index.changesSince(AGENT, synced);
    expect(changes.kind === 'delta' && changes.delta.deletedIds.length).toBe(2);
  });

  it('prunes expired entries through the index so every removal reaches the agents', async () => {
    await store.upsertNode(node(AGENT, ['os:linux']));
    const now = clock.nowMs();
    const expired = await store.createEntry(newEntry(W('old'), AGENT, { expiresAtMs: now - 1 }));
    const live = await store.createEntry(newEntry(W('new'), AGENT, { expiresAtMs: now + 60_000 }));
    const deltas: EntryDelta[] = [];
    index.subscribe(AGENT, (d) => deltas.push(d));
    expect(await store.pruneEntries(now)).toBe(1);
    expect(deltas).toEqual([
      { upserted: [], deletedIds: [expired.id], revision: await raw.currentRevision() },
    ]);
    expect(ids(index.entriesFor(AGENT))).toEqual([live.id]);
    expect(await raw.countEntries()).toBe(1);
    expect(await store.pruneEntries(now)).toBe(0);
  });

  it('keeps attestation aliases across node record updates and drops everything on ban or eviction', async () => {
    const alias = `${TD}/host/db-1`;
    const entry = await store.createEntry(newEntry(W('db'), alias));
    await store.upsertNode(node(AGENT, ['os:linux']));
    index.agentUpserted({ spiffeId: AGENT, selectors: sel('os:linux'), aliases: [alias] });
    await store.upsertNode(node(AGENT, ['os:linux', 'zone:a']));
    expect(index.aliasesOf(AGENT)).toEqual([alias]);
    expect(ids(index.entriesFor(AGENT))).toEqual([entry.id]);
    await store.banNode(AGENT, clock.nowMs());
    expect(index.entriesFor(AGENT)).toEqual([]);
    await store.upsertNode(node(AGENT, ['os:linux']));
    expect(index.aliasesOf(AGENT)).toEqual([]);
    await store.deleteNode(AGENT);
    expect(index.changesSince(AGENT, index.revision)).toEqual({
      kind: 'snapshot',
      entries: [],
      revision: index.revision,
    });
  });

  it('loads the same view the writes built, skipping banned nodes', async () => {
    const nodeSet = `${TD}/node-set/linux`;
    await store.upsertNode(node(AGENT, ['os:linux', 'zone:a']));
    await store.upsertNode(node(`${TD}/sigil/agent/banned`, ['os:linux'], true));
    await store.createEntry(newEntry(nodeSet, SERVER_ID, { selectors: sel('os:linux') }));
    await store.createEntry(newEntry(W('web'), nodeSet));
    await store.createEntry(newEntry(W('own'), AGENT));
    const fresh = await AuthorizedEntries.load(raw, SERVER_ID);
    expect(fresh.revision).toBe(index.revision);
    expect(fresh.entriesFor(AGENT)).toEqual(index.entriesFor(AGENT));
    expect(fresh.entriesFor(AGENT)).toHaveLength(2);
    expect(fresh.aliasesOf(`${TD}/sigil/agent/banned`)).toEqual([]);
    expect(fresh.entriesFor(`${TD}/sigil/agent/banned`)).toEqual([]);
    // A resume from before the index was loaded cannot be answered from its log.
    expect(fresh.changesSince(AGENT, fresh.revision).kind).toBe('snapshot');
  });

  it('keeps a subscriber equal to entriesFor through concurrent writes', async () => {
    await store.upsertNode(node(AGENT, ['os:linux']));
    const state = new Map();
    index.subscribe(AGENT, (d) => applyDelta(state, d));
    const writes = Array.from({ length: 20 }, (_, i) => store.createEntry(newEntry(W(`c${i}`), AGENT)));
    const created = await Promise.all(writes);
    await Promise.all(created.filter((_, i) => i % 2 === 0).map((e) => store.deleteEntry(e.id)));
    expect([...state.values()].sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual(index.entriesFor(AGENT));
    expect(index.entriesFor(AGENT)).toHaveLength(10);
  });
});
