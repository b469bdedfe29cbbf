import { X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { isSigilError } from '../../spiffe/errors.js';
import { parseTrustDomain } from '../../spiffe/id.js';
import { makeSelector, type Selector } from '../../spiffe/selector.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import type { WorkloadIdentity } from '../workloadapi/identity-feed.js';
import { testEntry } from './entries.test-support.js';
import { FakeSigner, managerOptions } from './fake-signer.test-support.js';
import { AgentManager, type AgentManagerOptions } from './index.js';
import type { AgentEntry, SyncUpdate } from './types.js';

const HOUR_MS = 60 * 60 * 1000;
const TD = parseTrustDomain('example.org');
const stops: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function uid(n: number | string): Selector {
  return makeSelector('unix', `uid:${n}`);
}

const entry = (id: string, overrides: Partial<AgentEntry> = {}) =>
  testEntry(id, { selectors: [uid(id)], ...overrides });

function delta(
  upserted: AgentEntry[],
  deletedIds: string[] = [],
  extra: Partial<SyncUpdate> = {},
): SyncUpdate {
  return { snapshot: false, upserted, deletedIds, revision: 1, ...extra };
}

async function setup(options: Partial<AgentManagerOptions> = {}) {
  const clock = new ManualClock();
  const signer = await FakeSigner.create(clock, TD);
  const manager = new AgentManager(managerOptions(signer, clock, TD, options));
  const byId = new Map<string, AgentEntry>();
  signer.lookup = (id) => byId.get(id);
  const sync = (update: SyncUpdate) => {
    for (const e of update.upserted) byId.set(e.id, e);
    manager.applySync(update);
  };
  const controller = new AbortController();
  const running = manager.run(controller.signal);
  stops.push(async () => {
    controller.abort();
    await running;
  });
  const settle = async () => {
    for (let i = 0; i < 3; i++) await clock.advance(0);
  };
  return { clock, signer, manager, sync, settle };
}

/** Reads a watch stream in the background; `values` fills as identities arrive. */
function watchAll(manager: AgentManager, selectors: Selector[]) {
  const controller = new AbortController();
  const values: WorkloadIdentity[] = [];
  const done = (async () => {
    for await (const identity of manager.watch(selectors, controller.signal)) values.push(identity);
  })();
  stops.push(async () => {
    controller.abort();
    await done;
  });
  return { values, last: () => values[values.length - 1], stop: () => controller.abort() };
}

function serialOf(identity: WorkloadIdentity | undefined, index = 0): string | undefined {
  const chain = identity?.svids[index]?.chain;
  return chain ? describeCertificate(chain[0]!).serialHex : undefined;
}

describe('AgentManager minting', () => {
  it('mints an SVID by CSR when an entry arrives: the leaf names the entry and carries the agent key', async () => {
    const { manager, signer, sync, settle } = await setup();
    sync(delta([entry('web', { dnsNames: ['web.example.org'] })]));
    await settle();
    expect(signer.x509Calls).toEqual([['web']]);
    expect(manager.svidStatus('web').minted).toBe(true);
    const watcher = watchAll(manager, [uid('web')]);
    await settle();
    const svid = watcher.last()!.svids[0]!;
    const leaf = new X509Certificate(svid.chain[0]!);
    expect(svid.spiffeId).toBe('spiffe://example.org/web');
    expect(leaf.subjectAltName).toContain('URI:spiffe://example.org/web');
    expect(leaf.checkPrivateKey(svid.key)).toBe(true);
    const described = describeCertificate(svid.chain[0]!);
    expect(manager.svidStatus('web')).toEqual({
      minted: true,
      expiresAtMs: described.notAfterMs,
      serialHex: described.serialHex,
    });
    expect(svid.expiresAtMs).toBe(described.notAfterMs);
  });

  it('renews at half-life and not before', async () => {
    const { clock, manager, signer, sync, settle } = await setup();
    sync(delta([entry('web')]));
    await settle();
    const first = manager.svidStatus('web');
    await clock.advance(HOUR_MS / 2 - 1);
    expect(signer.x509Calls).toHaveLength(1);
    expect(manager.svidStatus('web').serialHex).toBe(first.serialHex);
    await clock.advance(1);
    await settle();
    expect(signer.x509Calls).toHaveLength(2);
    expect(manager.svidStatus('web').serialHex).not.toBe(first.serialHex);
    expect(manager.svidStatus('web').expiresAtMs).toBe(first.expiresAtMs! + HOUR_MS / 2);
  });

  it('does not re-mint for a metadata-only change, but watchers see the new hint and selectors apply', async () => {
    const { manager, signer, sync, settle } = await setup();
    sync(delta([entry('web')]));
    await settle();
    const watcher = watchAll(manager, [uid('web'), uid('extra')]);
    await settle();
    const serial = manager.svidStatus('web').serialHex;
    sync(
      delta([
        entry('web', { hint: 'internal', admin: true, revision: 7, selectors: [uid('web'), uid('extra')] }),
      ]),
    );
    await settle();
    expect(signer.x509Calls).toHaveLength(1);
    expect(manager.svidStatus('web').serialHex).toBe(serial);
    expect(watcher.last()!.svids[0]!.hint).toBe('internal');
    expect(serialOf(watcher.last())).toBe(serial);
  });

  it('re-mints when the SPIFFE ID changes', async () => {
    const { manager, signer, sync, settle } = await setup();
    sync(delta([entry('web')]));
    await settle();
    const watcher = watchAll(manager, [uid('web')]);
    await settle();
    sync(delta([entry('web', { spiffeId: 'spiffe://example.org/frontend', revision: 2 })]));
    await settle();
    expect(signer.x509Calls).toEqual([['web'], ['web']]);
    expect(watcher.last()!.svids[0]!.spiffeId).toBe('spiffe://example.org/frontend');
    expect(new X509Certificate(watcher.last()!.svids[0]!.chain[0]!).subjectAltName).toContain('/frontend');
  });

  it('redacts a deleted entry from its watchers at once', async () => {
    const { manager, sync, settle } = await setup();
    sync(delta([entry('web'), entry('db', { selectors: [uid('web'), uid('db')] })]));
    await settle();
    const watcher = watchAll(manager, [uid('web'), uid('db')]);
    await settle();
    expect(watcher.last()!.svids.map((s) => s.spiffeId)).toEqual([
      'spiffe://example.org/db',
      'spiffe://example.org/web',
    ]);
    sync(delta([], ['db']));
    await settle();
    expect(watcher.last()!.svids.map((s) => s.spiffeId)).toEqual(['spiffe://example.org/web']);
    expect(manager.svidStatus('db').minted).toBe(false);
    sync({ snapshot: true, upserted: [], deletedIds: [], revision: 9 });
    await settle();
    expect(watcher.last()!.svids).toEqual([]);
    expect(manager.revision).toBe(9);
  });

  it('backs off while the signer fails, keeps serving the cached SVID, and recovers', async () => {
    const { clock, manager, signer, sync, settle } = await setup();
    sync(delta([entry('web')]));
    await settle();
    const watcher = watchAll(manager, [uid('web')]);
    await settle();
    const serial = manager.svidStatus('web').serialHex;
    signer.failing = true;
    await clock.advance(HOUR_MS / 2);
    expect(signer.x509Calls).toHaveLength(2);
    // random 0.5 with equal jitter: attempt 1 waits 750 ms, attempt 2 1500 ms.
    await clock.advance(749);
    expect(signer.x509Calls).toHaveLength(2);
    await clock.advance(1);
    expect(signer.x509Calls).toHaveLength(3);
    await clock.advance(1499);
    expect(signer.x509Calls).toHaveLength(3);
    expect(serialOf(watcher.last())).toBe(serial);
    expect(manager.svidStatus('web').serialHex).toBe(serial);
    signer.failing = false;
    await clock.advance(1);
    await settle();
    expect(signer.x509Calls).toHaveLength(4);
    expect(serialOf(watcher.last())).not.toBe(serial);
  });

  it('refuses a leaf with another SPIFFE ID and retries later', async () => {
    const { clock, manager, signer, sync, settle } = await setup();
    signer.lieAboutId = 'spiffe://example.org/admin';
    sync(delta([entry('web')]));
    await settle();
    expect(manager.svidStatus('web').minted).toBe(false);
    signer.lieAboutId = undefined;
    await clock.advance(750);
    await settle();
    expect(manager.svidStatus('web').minted).toBe(true);
  });

  it('re-mints only when the SVID CA leaves the bundle', async () => {
    const { manager, signer, sync, settle } = await setup();
    sync(delta([entry('web')]));
    await settle();
    const oldCa = signer.caDer;
    const newCa = await signer.rotateCa();
    sync(delta([], [], { bundle: signer.bundle(oldCa, newCa) }));
    await settle();
    expect(signer.x509Calls).toHaveLength(1);
    sync(delta([], [], { bundle: signer.bundle(newCa) }));
    await settle();
    expect(signer.x509Calls).toHaveLength(2);
    expect(manager.bundles().get('example.org')!.x509Authorities).toEqual([newCa]);
  });

  it('splits minting into batches of signBatchSize', async () => {
    const { signer, sync, settle } = await setup({ signBatchSize: 2 });
    sync(delta(['a', 'b', 'c', 'd', 'e'].map((id) => entry(id))));
    await settle();
    expect(signer.x509Calls).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
  });
});

describe('AgentManager bounded cache', () => {
  it('keeps at most maxSvids, mints evicted or skipped entries on demand, and evicts the least recently used', async () => {
    const { manager, sync, settle } = await setup({ maxSvids: 2 });
    sync(delta(['a', 'b', 'c', 'd'].map((id) => entry(id))));
    await settle();
    const minted = () => ['a', 'b', 'c', 'd'].filter((id) => manager.svidStatus(id).minted);
    expect(minted()).toEqual(['a', 'b']);

    const c = watchAll(manager, [uid('c')]);
    await settle();
    expect(c.last()!.svids[0]!.spiffeId).toBe('spiffe://example.org/c');
    expect(c.values).toHaveLength(1);
    expect(minted()).toEqual(['b', 'c']);
    c.stop();
    await settle();

    const a = watchAll(manager, [uid('a')]);
    await settle();
    expect(a.last()!.svids[0]!.spiffeId).toBe('spiffe://example.org/a');
    // b was least recently used; c had a watcher until just now.
    expect(minted()).toEqual(['a', 'c']);
  });
});

describe('AgentManager watch', () => {
  it('yields empty svids for a workload nothing matches, then its SVID once a matching entry arrives', async () => {
    const { manager, sync, settle } = await setup();
    const watcher = watchAll(manager, [uid('web')]);
    await settle();
    expect(watcher.values).toHaveLength(1);
    expect(watcher.values[0]!.svids).toEqual([]);
    expect(watcher.values[0]!.federatedBundles.size).toBe(0);
    sync(delta([entry('web')]));
    await settle();
    expect(watcher.values).toHaveLength(2);
    expect(watcher.values[1]!.svids.map((s) => s.spiffeId)).toEqual(['spiffe://example.org/web']);
  });

  it('sends no duplicate: an unchanged bundle re-sent, or a change that does not affect the workload', async () => {
    const { manager, signer, sync, settle } = await setup();
    sync(delta([entry('web'), entry('db')]));
    await settle();
    const watcher = watchAll(manager, [uid('web')]);
    await settle();
    expect(watcher.values).toHaveLength(1);
    sync(
      delta([entry('web', { admin: true, revision: 3 }), entry('db', { hint: 'x' })], [], {
        bundle: signer.bundle(),
      }),
    );
    await settle();
    expect(watcher.values).toHaveLength(1);
    expect(Object.isFrozen(watcher.values[0])).toBe(true);
    expect(Object.isFrozen(watcher.values[0]!.svids)).toBe(true);
  });

  it('delivers only the federated bundles its entries name, and only their changes', async () => {
    const { clock, manager, sync, settle } = await setup();
    const other = await FakeSigner.create(clock, parseTrustDomain('other.org'));
    const third = await FakeSigner.create(clock, parseTrustDomain('third.org'));
    sync(
      delta([entry('web', { federatesWith: ['spiffe://other.org'] })], [], {
        federatedBundles: new Map([
          ['other.org', other.bundle()],
          ['third.org', third.bundle()],
        ]),
      }),
    );
    await settle();
    const watcher = watchAll(manager, [uid('web')]);
    await settle();
    expect([...watcher.last()!.federatedBundles.keys()]).toEqual(['other.org']);
    expect([...manager.bundles().keys()]).toEqual(['example.org', 'other.org', 'third.org']);
    const count = watcher.values.length;
    const otherCa = await other.rotateCa();
    sync(
      delta([], [], {
        federatedBundles: new Map([
          ['other.org', other.bundle(otherCa)],
          ['third.org', third.bundle()],
        ]),
      }),
    );
    await settle();
    expect(watcher.values).toHaveLength(count + 1);
    expect(watcher.last()!.federatedBundles.get('other.org')!.x509Authorities).toEqual([otherCa]);
    const thirdCa = await third.rotateCa();
    sync(
      delta([], [], {
        federatedBundles: new Map([
          ['other.org', other.bundle(otherCa)],
          ['third.org', third.bundle(thirdCa)],
        ]),
      }),
    );
    await settle();
    expect(watcher.values).toHaveLength(count + 1);
    expect(() => (watcher.last()!.federatedBundles as Map<string, unknown>).clear()).toThrow(TypeError);
  });

  it('shares one frozen value between watchers with the same selectors', async () => {
    const { manager, sync, settle } = await setup();
    sync(delta([entry('web')]));
    await settle();
    const one = watchAll(manager, [uid('web'), uid('x')]);
    const two = watchAll(manager, [uid('x'), uid('web')]);
    await settle();
    expect(one.last()).toBe(two.last());
  });
});

describe('AgentManager fan-out', () => {
  it('delivers one rotation to 1,000 watchers over 10 selector sets', async () => {
    const { clock, manager, signer, sync, settle } = await setup();
    const ids = Array.from({ length: 10 }, (_, i) => `svc${i}`);
    sync(delta(ids.map((id) => entry(id))));
    await settle();
    const watchers = Array.from({ length: 1000 }, (_, i) =>
      watchAll(manager, [uid(ids[i % 10]!), makeSelector('unix', 'gid:0')]),
    );
    await settle();
    expect(watchers.every((w) => w.values.length === 1)).toBe(true);
    const before = watchers.map((w) => serialOf(w.last()));

    const started = performance.now();
    await clock.advance(HOUR_MS / 2);
    while (!watchers.every((w) => w.values.length === 2)) await clock.advance(0);
    const rotationMs = performance.now() - started;
    expect(signer.x509Calls).toHaveLength(2);
    for (const [i, w] of watchers.entries()) expect(serialOf(w.last())).not.toBe(before[i]);

    // Fan-out alone: a bundle change reaches every watcher from one recomputation per selector set.
    const rotated = signer.bundle(signer.caDer, await signer.rotateCa());
    const fanOutStarted = performance.now();
    sync(delta([], [], { bundle: rotated }));
    while (!watchers.every((w) => w.values.length === 3)) await new Promise((r) => setImmediate(r));
    const fanOutMs = performance.now() - fanOutStarted;
    console.log(
      `rotation reached 1,000 watchers in ${rotationMs.toFixed(1)} ms (mint included); bundle fan-out ${fanOutMs.toFixed(1)} ms`,
    );
    expect(rotationMs).toBeLessThan(1000);
    expect(new Set(watchers.map((w) => w.last())).size).toBe(10);
  });
});

describe('AgentManager JWT-SVIDs', () => {
  it('caches per entry and audience set, refreshes after half the lifetime', async () => {
    const { clock, manager, signer, sync } = await setup();
    sync(delta([entry('web'), entry('db', { selectors: [uid('web')] })]));
    const first = await manager.fetchJwtSvids([uid('web')], ['a', 'b']);
    expect(first.map((s) => s.spiffeId)).toEqual(['spiffe://example.org/db', 'spiffe://example.org/web']);
    expect(signer.jwtCalls).toHaveLength(2);
    const hit = await manager.fetchJwtSvids([uid('web')], ['b', 'a', 'a'], 'spiffe://example.org/web');
    expect(hit.map((s) => s.token)).toEqual([first[1]!.token]);
    expect(signer.jwtCalls).toHaveLength(2);
    await manager.fetchJwtSvids([uid('web')], ['c'], 'spiffe://example.org/web');
    expect(signer.jwtCalls).toHaveLength(3);
    await clock.advance(2.5 * 60 * 1000 - 1);
    await manager.fetchJwtSvids([uid('web')], ['a', 'b'], 'spiffe://example.org/web');
    expect(signer.jwtCalls).toHaveLength(3);
    await clock.advance(1);
    const refreshed = await manager.fetchJwtSvids([uid('web')], ['a', 'b'], 'spiffe://example.org/web');
    expect(signer.jwtCalls).toHaveLength(4);
    expect(refreshed[0]!.token).not.toBe(first[1]!.token);
  });

  it('refuses an identity the workload is not entitled to with ERR_PERMISSION_DENIED', async () => {
    const { manager, sync } = await setup();
    sync(delta([entry('web')]));
    const err = await manager
      .fetchJwtSvids([uid('web')], ['a'], 'spiffe://example.org/db')
      .catch((e: unknown) => e);
    expect(isSigilError(err, 'ERR_PERMISSION_DENIED')).toBe(true);
    expect((err as Error).message).toBe(
      'no identity issued: the workload is not entitled to "spiffe://example.org/db"',
    );
    const none = await manager.fetchJwtSvids([uid('nobody')], ['a']).catch((e: unknown) => e);
    expect(isSigilError(none, 'ERR_PERMISSION_DENIED')).toBe(true);
    const noAudience = await manager.fetchJwtSvids([uid('web')], []).catch((e: unknown) => e);
    expect(isSigilError(noAudience, 'ERR_INPUT_INVALID')).toBe(true);
  });

  it('refuses an audience beyond the shared limits before minting or caching anything', async () => {
    const { manager, signer, sync } = await setup();
    sync(delta([entry('web')]));
    const huge = await manager.fetchJwtSvids([uid('web')], ['x'.repeat(2_500_000)]).catch((e: unknown) => e);
    expect(huge).toMatchObject({
      code: 'ERR_INPUT_INVALID',
      message: expect.stringContaining('at most 1024 bytes'),
    });
    expect(signer.jwtCalls).toHaveLength(0);
  });
});
