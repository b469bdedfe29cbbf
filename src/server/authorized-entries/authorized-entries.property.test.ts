// Random write sequences against a real SQLite store: every subscriber's applied deltas, every
// resume from a past revision, and a fresh load must all agree with the incremental index.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { isSigilError } from '../../spiffe/errors.js';
import { openDataStore, type RegistrationEntry } from '../datastore/index.js';
import { applyDelta, SERVER_ID, sel, TD } from './fixtures.test-support.js';
import { AuthorizedEntries, observeEntryWrites } from './index.js';

const AGENTS = [`${TD}/agent/a`, `${TD}/agent/b`, `${TD}/agent/c`];
/** Parents and spiffeIds come from one small pool so chains, cycles, aliases and node entries occur. */
const IDS = [...AGENTS, SERVER_ID, `${TD}/w/0`, `${TD}/w/1`, `${TD}/w/2`, `${TD}/w/3`];
const SELECTORS = ['k:1', 'k:2', 'k:3'];
const NOW_MS = 1_700_000_000_000;

const idArb = fc.constantFrom(...IDS);
const selectorsArb = fc.subarray(SELECTORS, { minLength: 1 });
const entryArb = fc.record({
  spiffeId: idArb,
  parentId: idArb,
  selectors: selectorsArb,
  expiresAtMs: fc.constantFrom(null, NOW_MS - 1, NOW_MS + 60_000),
});
function agentOpArb(agent: fc.Arbitrary<string>) {
  return fc.record({
    op: fc.constant('agent' as const),
    agent,
    selectors: fc.subarray(SELECTORS),
    aliases: fc.subarray([`${TD}/w/0`, `${TD}/w/3`], { maxLength: 1 }),
  });
}
const opArb = fc.oneof(
  fc.record({
    op: fc.constant('create' as const),
    entries: fc.array(entryArb, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    op: fc.constant('update' as const),
    pick: fc.nat(),
    change: fc.oneof(
      fc.record({ parentId: idArb }),
      fc.record({ spiffeId: idArb }),
      fc.record({ selectors: selectorsArb }),
      fc.record({ hint: fc.constantFrom('x', 'y') }),
    ),
  }),
  fc.record({
    op: fc.constant('delete' as const),
    picks: fc.array(fc.nat(), { minLength: 1, maxLength: 2 }),
  }),
  agentOpArb(fc.constantFrom(...AGENTS)),
  fc.record({ op: fc.constant('evict' as const), agent: fc.constantFrom(...AGENTS) }),
  fc.record({ op: fc.constant('prune' as const) }),
);
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

const sorted = (entries: Iterable<RegistrationEntry>) => [...entries].sort((a, b) => (a.id < b.id ? -1 : 1));

describe('incremental index properties', () => {
  it('matches applied deltas, resumes and a fresh load after any sequence of writes', async () => {
    // Every agent attests first, so most writes land on some agent's set.
    const attestAll = fc.tuple(...AGENTS.map((agent) => agentOpArb(fc.constant(agent))));
    const scenario = fc.tuple(attestAll, fc.array(opArb, { minLength: 5, maxLength: 40 }));
    await fc.assert(
      fc.asyncProperty(scenario, ([attest, ops]) => runScenario([...attest, ...ops])),
      { numRuns: 80 },
    );
  });
});

async function runScenario(ops: Op[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sigil-authz-prop-'));
  const clock = new ManualClock(NOW_MS);
  const raw = await openDataStore({ kind: 'sqlite', path: join(dir, 'store.sqlite3') }, clock);
  try {
    const index = await AuthorizedEntries.load(raw, SERVER_ID, { changeLogRevisions: 8 });
    const store = observeEntryWrites(raw, index);
    const states = new Map(AGENTS.map((a) => [a, new Map<string, RegistrationEntry>()]));
    /** Per agent: what it held after the last delta of each revision. */
    const history = new Map(AGENTS.map((a) => [a, new Map<number, Map<string, RegistrationEntry>>()]));
    for (const agent of AGENTS) {
      index.subscribe(agent, (delta) => {
        applyDelta(states.get(agent)!, delta);
        history.get(agent)!.set(delta.revision, new Map(states.get(agent)!));
      });
    }
    for (const op of ops) await apply(op, store, index);

    const fresh = await AuthorizedEntries.load(raw, SERVER_ID);
    for (const agent of AGENTS) {
      const expected = index.entriesFor(agent);
      expect(sorted(states.get(agent)!.values())).toEqual(expected);
      for (const { entry, via } of index.explain(agent)) expect(via.at(-1)).toBe(entry.parentId);
      // Attestation aliases are not stored; the server hands them to a fresh index on re-attestation.
      if (index.aliasesOf(agent).length > 0 || expected.length > 0 || fresh.entriesFor(agent).length > 0) {
        const node = await raw.fetchNode(agent);
        fresh.agentUpserted({
          spiffeId: agent,
          selectors: node.selectors,
          aliases: index.attestationAliasesOf(agent),
        });
      }
      expect(fresh.entriesFor(agent)).toEqual(expected);
      expect(fresh.aliasesOf(agent)).toEqual(index.aliasesOf(agent));
      for (const [revision, held] of history.get(agent)!) {
        const changes = index.changesSince(agent, revision);
        if (changes.kind === 'snapshot') {
          expect(changes.entries).toEqual(expected);
          continue;
        }
        const resumed = new Map(held);
        applyDelta(resumed, changes.delta);
        expect(sorted(resumed.values())).toEqual(expected);
      }
    }
  } finally {
    await raw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function apply(op: Op, store: ReturnType<typeof observeEntryWrites>, index: AuthorizedEntries) {
  const existing = async () => (await store.listEntries({}, { pageSize: 1000 })).items;
  const pick = <T>(items: readonly T[], n: number) =>
    items.length === 0 ? undefined : items[n % items.length];
  try {
    switch (op.op) {
      case 'create':
        await store.createEntries(
          op.entries.map((e) => ({
            ...e,
            selectors: sel(...e.selectors),
            x509SvidTtlMs: 0,
            jwtSvidTtlMs: 0,
            dnsNames: [],
            federatesWith: [],
            admin: false,
            downstream: false,
            hint: '',
          })),
        );
        return;
      case 'update': {
        const target = pick(await existing(), op.pick);
        if (target === undefined) return;
        const { selectors, ...rest } = op.change as { selectors?: string[] };
        await store.updateEntry(target.id, selectors === undefined ? rest : { selectors: sel(...selectors) });
        return;
      }
      case 'delete': {
        const all = await existing();
        const targets = op.picks.map((n) => pick(all, n)?.id).filter((id) => id !== undefined);
        if (targets.length === 1) await store.deleteEntry(targets[0]!);
        else await store.deleteEntries(targets);
        return;
      }
      case 'agent':
        await store.upsertNode({
          spiffeId: op.agent,
          attestationType: 'test',
          certSerial: '01',
          certNotAfterMs: 0,
          selectors: sel(...op.selectors),
          banned: false,
          canReattest: true,
          createdAtMs: 0,
          updatedAtMs: 0,
        });
        index.agentUpserted({ spiffeId: op.agent, selectors: sel(...op.selectors), aliases: op.aliases });
        return;
      case 'evict':
        await store.deleteNode(op.agent);
        return;
      case 'prune':
        await store.pruneEntries(NOW_MS);
        return;
    }
  } catch (err) {
    // Duplicates and writes to entries or nodes that are gone are refused by the store, as they
    // would be for a real caller; the index must simply not change.
    if (!isSigilError(err, 'ERR_ENTRY_DUPLICATE') && !isSigilError(err, 'ERR_NODE_NOT_FOUND')) throw err;
  }
}
