import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { parseTrustDomain } from '../../spiffe/id.js';
import { makeSelector } from '../../spiffe/selector.js';
import type { WorkloadIdentity } from '../workloadapi/identity-feed.js';
import { testEntry } from './entries.test-support.js';
import { FakeSigner, managerOptions } from './fake-signer.test-support.js';
import { AgentManager } from './index.js';

const HOUR_MS = 60 * 60 * 1000;
const TD = parseTrustDomain('example.org');
const WEB = makeSelector('unix', 'uid:1000');
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

const web = testEntry('web', { selectors: [WEB] });

function newManager(clock: ManualClock, signer: FakeSigner) {
  let changes = 0;
  const manager = new AgentManager(managerOptions(signer, clock, TD, { onCacheChanged: () => changes++ }));
  const start = () => {
    const controller = new AbortController();
    const running = manager.run(controller.signal);
    stops.push(async () => {
      controller.abort();
      await running;
    });
  };
  return { manager, start, changes: () => changes };
}

function watchAll(manager: AgentManager) {
  const controller = new AbortController();
  const values: WorkloadIdentity[] = [];
  const done = (async () => {
    for await (const identity of manager.watch([WEB], controller.signal)) values.push(identity);
  })();
  stops.push(async () => {
    controller.abort();
    await done;
  });
  return { values, last: () => values[values.length - 1] };
}

async function settle(clock: ManualClock): Promise<void> {
  for (let i = 0; i < 3; i++) await clock.advance(0);
}

describe('AgentManager never serves an expired X.509-SVID', () => {
  it('drops an SVID the server could not renew at its expiry: watchers get an update without it', async () => {
    const clock = new ManualClock();
    const signer = await FakeSigner.create(clock, TD);
    signer.lookup = () => web;
    const { manager, start, changes } = newManager(clock, signer);
    start();
    manager.applySync({ snapshot: true, upserted: [web], deletedIds: [], revision: 1 });
    await settle(clock);
    const watcher = watchAll(manager);
    await settle(clock);
    const expiresAtMs = manager.svidStatus('web').expiresAtMs!;
    expect(expiresAtMs).toBe(clock.nowMs() + HOUR_MS);
    expect(watcher.last()!.svids).toHaveLength(1);
    expect(manager.unexpiredSvidCount()).toBe(1);

    // The server goes away: renewals from half-life on fail, the cached SVID is served until its end.
    signer.failing = true;
    await clock.advance(expiresAtMs - clock.nowMs() - 1);
    expect(signer.x509Calls.length).toBeGreaterThan(2);
    expect(watcher.last()!.svids).toHaveLength(1);
    expect(manager.unexpiredSvidCount()).toBe(1);
    const updates = watcher.values.length;
    const changesBefore = changes();

    await clock.advance(1);
    expect(watcher.values).toHaveLength(updates + 1);
    expect(watcher.last()!.svids).toEqual([]);
    expect(manager.unexpiredSvidCount()).toBe(0);
    expect(manager.svidStatus('web').minted).toBe(false);
    // The SVID store is told, so the expired key leaves the disk too.
    expect(changes()).toBeGreaterThan(changesBefore);

    // A workload that asks now gets no identity at once (not a wait for a mint that keeps failing).
    const late = watchAll(manager);
    await settle(clock);
    expect(late.values).toHaveLength(1);
    expect(late.last()!.svids).toEqual([]);

    // The server is back: the next retry mints a new SVID and the watchers get it.
    signer.failing = false;
    await clock.advance(30_000);
    await settle(clock);
    expect(watcher.last()!.svids).toHaveLength(1);
    expect(manager.unexpiredSvidCount()).toBe(1);
  });

  it('serves a restored SVID only until it expires, and never one restored already expired', async () => {
    const clock = new ManualClock();
    const signer = await FakeSigner.create(clock, TD);
    signer.lookup = () => web;
    const first = newManager(clock, signer);
    first.start();
    first.manager.applySync({ snapshot: true, upserted: [web], deletedIds: [], revision: 1 });
    await settle(clock);
    const kept = first.manager.exportCache('spiffe://example.org/spire/agent/x/node1');
    const expiresAtMs = kept.svids[0]!.expiresAtMs;
    signer.failing = true;

    // Restarted during the outage with 10 minutes of the SVID left.
    await clock.advance(expiresAtMs - clock.nowMs() - 10 * 60_000);
    const second = newManager(clock, signer);
    second.manager.restoreCache(kept);
    second.start();
    const watcher = watchAll(second.manager);
    await settle(clock);
    expect(watcher.last()!.svids.map((s) => s.expiresAtMs)).toEqual([expiresAtMs]);
    await clock.advance(10 * 60_000);
    expect(watcher.last()!.svids).toEqual([]);
    expect(second.manager.unexpiredSvidCount()).toBe(0);

    // Restored after it expired (the cache handed over as it was): nothing to serve from it.
    const third = newManager(clock, signer);
    third.manager.restoreCache(kept);
    expect(third.manager.unexpiredSvidCount()).toBe(0);
    third.start();
    const late = watchAll(third.manager);
    await settle(clock);
    expect(late.values.length).toBeGreaterThan(0);
    expect(late.values.every((identity) => identity.svids.length === 0)).toBe(true);
  });
});
