// The workload SVID cache kept between runs: a manager's cache written by SvidStore is served by the
// next run's manager before (and without) any server; corrupt, oversized or foreign files are ignored
// with a warning that shows no key; writes are coalesced; the server's first snapshot replaces it.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTrustBundle } from '../../spiffe/bundle.js';
import { ManualClock } from '../../spiffe/clock.js';
import { parseTrustDomain } from '../../spiffe/id.js';
import { makeSelector } from '../../spiffe/selector.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import type { WorkloadIdentity } from '../workloadapi/identity-feed.js';
import { testEntry } from './entries.test-support.js';
import { FakeSigner, managerOptions } from './fake-signer.test-support.js';
import { AgentManager } from './index.js';
import { decodePersistedCache } from './persisted-cache.js';
import { createSvidStore, maxSvidStoreBytes, SVID_STORE_FILE, type SvidStore } from './svid-store.js';
import type { AgentEntry } from './types.js';

const TD = parseTrustDomain('example.org');
const AGENT = 'spiffe://example.org/sigil/agent/join_token/t1';
const HOUR_MS = 60 * 60 * 1000;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const entry = (id: string, overrides: Partial<AgentEntry> = {}) =>
  testEntry(id, { parentId: 'spiffe://example.org/node1', ...overrides });

/** A pino logger whose lines land in `lines`. */
function capturedLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).trim().split('\n'));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** One agent run: a manager on `clock` with a store in `dataDir`; `signer.failing` is the server being down. */
function agentRun(dataDir: string, clock: ManualClock, signer: FakeSigner, kind: 'disk' | 'memory' = 'disk') {
  const { logger, lines } = capturedLogger();
  let manager: AgentManager;
  const store: SvidStore = createSvidStore(kind, {
    dataDir,
    clock,
    logger,
    trustDomain: TD,
    maxSvids: 100,
    snapshot: () => manager.exportCache(AGENT),
  });
  manager = new AgentManager(managerOptions(signer, clock, TD, { onCacheChanged: () => store.markDirty() }));
  const controller = new AbortController();
  let running: Promise<void> | undefined;
  const start = () => {
    running = manager.run(controller.signal);
  };
  const stop = async () => {
    controller.abort();
    await running;
    await store.close();
  };
  cleanups.push(stop);
  return { manager, store, lines, start, stop };
}

async function watchOnce(manager: AgentManager, clock: ManualClock, id: string): Promise<WorkloadIdentity> {
  const controller = new AbortController();
  const iterator = manager
    .watch([makeSelector('unix', `uid:${id}`)], controller.signal)
    [Symbol.asyncIterator]();
  const next = iterator.next();
  await clock.advance(0);
  const { value } = await next;
  controller.abort();
  return value as WorkloadIdentity;
}

const serialOf = (identity: WorkloadIdentity) => describeCertificate(identity.svids[0]!.chain[0]!).serialHex;

async function setup() {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sigil-svid-store-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const clock = new ManualClock();
  const signer = await FakeSigner.create(clock, TD);
  const byId = new Map<string, AgentEntry>();
  signer.lookup = (id) => byId.get(id);
  /** A first run that synced `entries` and minted their SVIDs, then stopped (its store flushed). */
  const firstRun = async (entries: AgentEntry[]) => {
    for (const e of entries) byId.set(e.id, e);
    const run = agentRun(dataDir, clock, signer);
    run.start();
    run.manager.applySync({ snapshot: true, upserted: entries, deletedIds: [], revision: 7 });
    for (let i = 0; i < 3; i++) await clock.advance(0);
    const serials = new Map<string, string>();
    for (const e of entries) serials.set(e.id, run.manager.svidStatus(e.id).serialHex!);
    await run.stop();
    return serials;
  };
  return { dataDir, clock, signer, firstRun, file: path.join(dataDir, SVID_STORE_FILE) };
}

describe('SvidStore: an agent restarted while the server is down', () => {
  it('serves every cached workload its SVID from disk, with no server call', async () => {
    const { dataDir, clock, signer, firstRun, file } = await setup();
    const serials = await firstRun([entry('web'), entry('db')]);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    signer.failing = true;
    const calls = signer.x509Calls.length;
    const second = agentRun(dataDir, clock, signer);
    const kept = await second.store.load(AGENT);
    expect(kept).not.toBeNull();
    second.manager.restoreCache(kept!);
    second.start();
    expect(serialOf(await watchOnce(second.manager, clock, 'web'))).toBe(serials.get('web'));
    expect(serialOf(await watchOnce(second.manager, clock, 'db'))).toBe(serials.get('db'));
    expect(second.manager.revision).toBe(7);
    expect(signer.x509Calls.length).toBe(calls);
    expect(second.lines.join('\n')).toContain('Workload SVID cache loaded');
  });

  it('keeps the federated bundles and tainted authorities too', async () => {
    const { dataDir, clock, signer } = await setup();
    const federated = createTrustBundle({
      trustDomain: parseTrustDomain('partner.org'),
      x509Authorities: [signer.caDer],
    });
    const first = agentRun(dataDir, clock, signer);
    first.start();
    first.manager.applySync({
      snapshot: true,
      upserted: [entry('web', { federatesWith: ['spiffe://partner.org'] })],
      deletedIds: [],
      revision: 3,
      bundle: signer.bundle(),
      federatedBundles: new Map([['partner.org', federated]]),
      taintedAuthorities: new Set(['00ff']),
    });
    await first.stop();
    const second = agentRun(dataDir, clock, signer);
    const kept = (await second.store.load(AGENT))!;
    expect(kept.taintedAuthorities).toEqual(['00ff']);
    second.manager.restoreCache(kept);
    expect([...second.manager.bundles().keys()]).toEqual(['example.org', 'partner.org']);
    expect(second.manager.bundles().get('partner.org')!.x509Authorities[0]!.equals(signer.caDer)).toBe(true);
  });

  it('drops SVIDs that expired while it was down, keeping their entries', async () => {
    const { dataDir, clock, signer, firstRun } = await setup();
    await firstRun([entry('web')]);
    await clock.advance(2 * HOUR_MS);
    const second = agentRun(dataDir, clock, signer);
    const kept = await second.store.load(AGENT);
    expect(kept!.entries.map((e) => e.id)).toEqual(['web']);
    expect(kept!.svids).toEqual([]);
    expect(second.lines.join('\n')).toMatch(/"expired":1/);
  });

  it('is replaced by the server’s first snapshot: an entry deleted meanwhile leaves memory and disk', async () => {
    const { dataDir, clock, signer, firstRun, file } = await setup();
    await firstRun([entry('web'), entry('gone')]);
    const second = agentRun(dataDir, clock, signer);
    second.manager.restoreCache((await second.store.load(AGENT))!);
    second.start();
    second.manager.applySync({ snapshot: true, upserted: [entry('web')], deletedIds: [], revision: 9 });
    await clock.advance(1_000);
    expect(second.manager.entries().map((e) => e.id)).toEqual(['web']);
    // The write itself is real file I/O, done outside the manual clock.
    await vi.waitFor(() => expect(JSON.parse(readFileSync(file, 'utf8')).revision).toBe(9));
    const onDisk = JSON.parse(readFileSync(file, 'utf8'));
    expect(onDisk.entries.map((e: AgentEntry) => e.id)).toEqual(['web']);
    expect(onDisk.svids.map((s: { entry_id: string }) => s.entry_id)).toEqual(['web']);
  });
});

describe('SvidStore: what it refuses', () => {
  it.each([
    ['cut short', (text: string) => text.slice(0, text.indexOf('"key":"') + 40)],
    ['of another version', (text: string) => text.replace('"version":1', '"version":2')],
    ['with a broken key', (text: string) => text.replace(/"key":"[^"]{8}/, '"key":"!!!!!!!!')],
  ])('a file %s: a warning naming the file and no key material, and an empty start', async (_name, spoil) => {
    const { dataDir, clock, signer, firstRun, file } = await setup();
    await firstRun([entry('web')]);
    const text = readFileSync(file, 'utf8');
    const key = JSON.parse(text).svids[0].key as string;
    writeFileSync(file, spoil(text));
    const second = agentRun(dataDir, clock, signer);
    expect(await second.store.load(AGENT)).toBeNull();
    const logged = second.lines.join('\n');
    expect(logged).toContain('"msg":"Workload SVID cache ignored; starting without it"');
    expect(logged).toContain(file);
    expect(logged).not.toContain(key.slice(0, 20));
    expect(logged).not.toContain(key.slice(20));
  });

  it('a file larger than svid_cache_max allows, unread', async () => {
    const { dataDir, clock, signer, file } = await setup();
    writeFileSync(file, Buffer.alloc(maxSvidStoreBytes(100) + 1, 0x20));
    const run = agentRun(dataDir, clock, signer);
    expect(await run.store.load(AGENT)).toBeNull();
    expect(run.lines.join('\n')).toMatch(/"reason":"\d+ bytes, more than \d+ \(svid_cache_max 100\)"/);
  });

  it('a file another agent kept', async () => {
    const { dataDir, clock, signer, firstRun } = await setup();
    await firstRun([entry('web')]);
    const run = agentRun(dataDir, clock, signer);
    expect(await run.store.load('spiffe://example.org/sigil/agent/join_token/other')).toBeNull();
    expect(run.lines.join('\n')).toContain(`it was kept for agent ${AGENT}`);
  });

  it('SVIDs beyond maxSvids and SVIDs whose key is not their leaf’s', async () => {
    const { clock, firstRun, file } = await setup();
    await firstRun([entry('a'), entry('b'), entry('c')]);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    // b's key swapped for c's: a file that does not hang together is not served.
    doc.svids[1].key = doc.svids[2].key;
    const decoded = decodePersistedCache(JSON.stringify(doc), {
      trustDomain: TD,
      nowMs: clock.nowMs(),
      maxSvids: 1,
    });
    expect(decoded.cache.svids.map((s) => s.entryId)).toEqual(['c']);
    expect(decoded.dropped).toBe(2);
  });

  it('svid_store: memory keeps nothing and removes what a disk run left', async () => {
    const { dataDir, clock, signer, firstRun } = await setup();
    await firstRun([entry('web')]);
    const run = agentRun(dataDir, clock, signer, 'memory');
    expect(await run.store.load(AGENT)).toBeNull();
    expect(readdirSync(dataDir)).not.toContain(SVID_STORE_FILE);
    run.start();
    run.manager.applySync({ snapshot: true, upserted: [entry('web')], deletedIds: [], revision: 1 });
    await clock.advance(5_000);
    await run.stop();
    expect(readdirSync(dataDir)).not.toContain(SVID_STORE_FILE);
  });
});

describe('SvidStore: writes', () => {
  it('coalesces many changes into one write, a delay after the first', async () => {
    const { dataDir, clock, signer, file } = await setup();
    const entries = Array.from({ length: 50 }, (_, i) => entry(`e${i}`));
    signer.lookup = (id) => entries.find((e) => e.id === id);
    const run = agentRun(dataDir, clock, signer);
    run.start();
    for (const e of entries)
      run.manager.applySync({ snapshot: false, upserted: [e], deletedIds: [], revision: 1 });
    await clock.advance(999);
    expect(readdirSync(dataDir)).not.toContain(SVID_STORE_FILE);
    await clock.advance(1);
    await vi.waitFor(() => expect(run.lines.join('\n')).toContain('Workload SVID cache written'));
    await clock.advance(60_000);
    const writes = run.lines.filter((l) => l.includes('Workload SVID cache written'));
    expect(writes).toHaveLength(1);
    expect(JSON.parse(readFileSync(file, 'utf8')).svids).toHaveLength(50);
  });
});
