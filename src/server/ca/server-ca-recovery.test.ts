// Failure injection for CA rotation on a manual clock: a journal save that fails, a keys directory
// that cannot be written, an upstream CA that cannot be read. After each, rotation resumes by
// itself (retrying with backoff), memory never runs ahead of the store, readiness and metrics tell
// the truth, and the active CA never expires. Jitter is pinned to 0, so retries come after 0.5s,
// 1s, 2s… (half of each backoff ceiling).
import { readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../../test/support/harness.js';
import type { ManualClock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import { generateKey } from '../../spiffe/keys.js';
import { encodePem } from '../../spiffe/pem.js';
import { createCaCertificate } from '../../spiffe/x509-authority.js';
import type { DataStore } from '../datastore/types.js';
import { caTestbed, HOUR, TEST_TRUST_DOMAIN } from './ca-testbed.test-support.js';
import type { CaObserver } from './rotation-health.js';
import { loadUpstreamAuthority } from './upstream.js';

const td = TEST_TRUST_DOMAIN;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Outcomes extends CaObserver {
  readonly failures: number[];
  readonly successes: number[];
  readonly expiries: Map<string, number>;
  /** Resolves at the next reported rotation outcome. */
  next(): Promise<'failed' | 'succeeded'>;
}

function outcomes(): Outcomes {
  let waiter: ((o: 'failed' | 'succeeded') => void) | undefined;
  const o: Outcomes = {
    failures: [],
    successes: [],
    expiries: new Map(),
    next: () => new Promise((resolve) => (waiter = resolve)),
    activeAuthority: (kind, notAfterMs) => o.expiries.set(kind, notAfterMs),
    rotationFailed: (n) => {
      o.failures.push(n);
      waiter?.('failed');
    },
    rotationSucceeded: (atMs) => {
      o.successes.push(atMs);
      waiter?.('succeeded');
    },
  };
  return o;
}

async function setup(over: { upstreamDir?: string } = {}) {
  const { clock, store: raw, keysDir, logs, open } = await caTestbed(cleanups);
  const faults = { saveFailures: 0 };
  // A store whose journal saves fail while faults.saveFailures > 0, like a disk that errors.
  const store: DataStore = Object.assign(Object.create(raw) as DataStore, {
    saveJournal: async (data: string, expectedVersion: number) => {
      if (faults.saveFailures > 0) {
        faults.saveFailures -= 1;
        throw new SigilError('ERR_DATASTORE', 'injected: disk I/O error');
      }
      return raw.saveJournal(data, expectedVersion);
    },
  });
  const observed = outcomes();
  const ca = await open({
    store,
    upstream: over.upstreamDir
      ? loadUpstreamAuthority({
          certFile: path.join(over.upstreamDir, 'root.pem'),
          keyFile: path.join(over.upstreamDir, 'root.key'),
          bundleFile: null,
        })
      : null,
    random: () => 0,
  });
  ca.observe(observed);
  const states = async () => (await ca.authorities()).x509.map((a) => a.state);
  const storedStates = async () =>
    JSON.parse((await raw.loadJournal())!.data).x509.map((a: { state: string }) => a.state);
  /** Key files on disk are exactly those the stored journal names. */
  const expectKeysMatchJournal = async () => {
    const journal = JSON.parse((await raw.loadJournal())!.data);
    const named = [...journal.x509, ...journal.jwt].map((a: { keyFile: string }) => a.keyFile).sort();
    expect(readdirSync(keysDir).sort()).toEqual(named);
  };
  return { ca, clock, raw, faults, keysDir, logs, observed, states, storedStates, expectKeysMatchJournal };
}

/** Moves the clock by `ms` and waits for the rotation check that fires to report its outcome. */
async function stepTo(clock: ManualClock, observed: Outcomes, ms: number) {
  const outcome = observed.next();
  await clock.advance(ms);
  return outcome;
}

describe('CA rotation recovers from failures', () => {
  it('keeps memory equal to the store when the journal save fails', async () => {
    const { ca, clock, faults, observed, states, storedStates } = await setup();
    faults.saveFailures = 1;
    expect(await stepTo(clock, observed, 12 * HOUR)).toBe('failed');
    expect(await storedStates()).toEqual(['active']);
    expect(await states()).toEqual(['active']);
    expect(ca.bundle().x509Authorities).toHaveLength(1);
  });

  it('retries a failing journal save with backoff until it succeeds, then rotates on schedule', async () => {
    const { ca, clock, faults, observed, logs, states, expectKeysMatchJournal } = await setup();
    const first = ca.x509Authority;
    faults.saveFailures = 3;
    expect(await stepTo(clock, observed, 12 * HOUR)).toBe('failed');
    expect(logs()).toContain('Authority rotation failed; retrying in 1s');
    // One blip is not "not ready": the active CA has 8h before its successor must sign.
    expect(ca.isRotationReady()).toBe(true);
    expect(await stepTo(clock, observed, 500)).toBe('failed');
    expect(await stepTo(clock, observed, 1_000)).toBe('failed');
    expect(logs()).toContain('retrying in 2s');
    expect(ca.isRotationReady()).toBe(false);
    expect(observed.failures).toEqual([1, 2, 3]);
    expect(await stepTo(clock, observed, 2_000)).toBe('succeeded');
    expect(ca.isRotationReady()).toBe(true);
    expect(await states()).toEqual(['active', 'prepared']);
    expect(ca.bundle().x509Authorities).toHaveLength(2);
    // The keys made by the failed attempts were never journaled: removed, not left behind.
    await expectKeysMatchJournal();

    // The successor signs at 20h, long before the first CA expires, and the gauge follows it.
    expect(await stepTo(clock, observed, 8 * HOUR)).toBe('succeeded');
    expect(ca.x509Authority.id).not.toBe(first.id);
    expect(observed.expiries.get('x509')).toBe(ca.x509Authority.notAfterMs);
    expect(clock.nowMs()).toBeLessThan(first.notAfterMs);
  });

  it('recovers once an unwritable keys directory is writable again', async () => {
    const { ca, clock, keysDir, observed, states, expectKeysMatchJournal } = await setup();
    const first = ca.x509Authority;
    // A file where the directory was: every key write fails, as on a full or read-only disk.
    renameSync(keysDir, `${keysDir}.away`);
    writeFileSync(keysDir, 'not a directory');
    expect(await stepTo(clock, observed, 12 * HOUR)).toBe('failed');
    expect(await stepTo(clock, observed, 500)).toBe('failed');
    expect(await states()).toEqual(['active']);
    rmSync(keysDir);
    renameSync(`${keysDir}.away`, keysDir);
    expect(await stepTo(clock, observed, 1_000)).toBe('succeeded');
    expect(await states()).toEqual(['active', 'prepared']);
    await expectKeysMatchJournal();
    expect(await stepTo(clock, observed, 8 * HOUR)).toBe('succeeded');
    expect(ca.x509Authority.id).not.toBe(first.id);
  });

  it('recovers once an unreachable upstream CA can be read again', async () => {
    const upstream = makeTempDir('sigil-upstream-');
    cleanups.push(upstream.cleanup);
    const rootKey = generateKey('ec-p256');
    const start = Date.UTC(2026, 0, 1);
    const rootDer = await createCaCertificate({
      trustDomain: td,
      key: rootKey,
      notBeforeMs: start - HOUR,
      notAfterMs: start + 30 * 24 * HOUR,
    });
    writeFileSync(path.join(upstream.dir, 'root.pem'), encodePem('CERTIFICATE', rootDer));
    const keyPem = rootKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    writeFileSync(path.join(upstream.dir, 'root.key'), keyPem);
    const { ca, clock, observed, states } = await setup({ upstreamDir: upstream.dir });
    const first = ca.x509Authority;
    rmSync(path.join(upstream.dir, 'root.key'));
    expect(await stepTo(clock, observed, 12 * HOUR)).toBe('failed');
    expect(await stepTo(clock, observed, 500)).toBe('failed');
    expect(await states()).toEqual(['active']);
    writeFileSync(path.join(upstream.dir, 'root.key'), keyPem);
    expect(await stepTo(clock, observed, 1_000)).toBe('succeeded');
    expect(await states()).toEqual(['active', 'prepared']);
    expect(await stepTo(clock, observed, 8 * HOUR)).toBe('succeeded');
    expect(ca.x509Authority.id).not.toBe(first.id);
  });

  it('reports not ready at once when a failure leaves the active CA overdue', async () => {
    const { ca, clock, faults, observed } = await setup();
    const first = ca.x509Authority.id;
    expect(await stepTo(clock, observed, 12 * HOUR)).toBe('succeeded');
    faults.saveFailures = 1;
    // The activation at 20h fails: the CA is past the mark where its successor should sign.
    expect(await stepTo(clock, observed, 8 * HOUR)).toBe('failed');
    expect(ca.isRotationReady()).toBe(false);
    expect(await stepTo(clock, observed, 500)).toBe('succeeded');
    expect(ca.isRotationReady()).toBe(true);
    expect(ca.x509Authority.id).not.toBe(first);
  });
});
