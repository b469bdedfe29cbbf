// Workload SVID cache benchmark: what one write and one load of the agent's svid_store file cost for
// 1,000 and 10,000 cached X.509-SVIDs (with 2,000 and 20,000 entries), through the real SvidStore
// (encode, atomic 0600 write with fsync, read, decode with every key checked against its leaf).
// SvidStore spaces writes by ten times the last one's cost, so these numbers bound its I/O share.
// The control, in the same run, is the featureless floor: the same bytes written with one fsync'd
// writeFileSync and read back with one JSON.parse (no encoding, no rename, no key checks).
// Medians of 5 with their range, and the machine's load before and after.
// `npm run bench:svid-store [-- --quick] [-- --results FILE]`: --quick measures 1,000 SVIDs only;
// --results writes the figures for bench/RESULTS.md (results.ts). No issue sets a target: information.
import { createPublicKey } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import type { AgentEntry, PersistedCache } from '../src/agent/manager/index.js';
import { createSvidStore } from '../src/agent/manager/index.js';
import { topIssuerOf } from '../src/agent/manager/svid-cache.js';
import { createTrustBundle } from '../src/spiffe/bundle.js';
import { systemClock } from '../src/spiffe/clock.js';
import { parseSpiffeId, parseTrustDomain } from '../src/spiffe/id.js';
import { generateKey } from '../src/spiffe/keys.js';
import { makeSelector } from '../src/spiffe/selector.js';
import { createCaCertificate } from '../src/spiffe/x509-authority.js';
import { describeCertificate, mintX509Svid, prepareIssuer } from '../src/spiffe/x509-svid.js';
import { type Figure, rangeOf, reportResults } from './results.js';

const TD = parseTrustDomain('bench.example');
const AGENT = 'spiffe://bench.example/sigil/agent/bench';
const HOUR_MS = 60 * 60 * 1000;

async function cacheOf(svidCount: number): Promise<PersistedCache> {
  const nowMs = systemClock.nowMs();
  const caKey = generateKey('ec-p256');
  const caDer = await createCaCertificate({
    trustDomain: TD,
    key: caKey,
    notBeforeMs: nowMs - HOUR_MS,
    notAfterMs: nowMs + 24 * HOUR_MS,
  });
  const issuer = prepareIssuer(caDer, caKey);
  const entries: AgentEntry[] = [];
  for (let i = 0; i < svidCount * 2; i++) {
    entries.push({
      id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      spiffeId: `spiffe://bench.example/ns/default/sa/workload-${i}`,
      parentId: AGENT,
      selectors: [makeSelector('unix', `uid:${10_000 + i}`)],
      x509SvidTtlMs: 0,
      jwtSvidTtlMs: 0,
      dnsNames: [],
      federatesWith: [],
      admin: false,
      downstream: false,
      hint: '',
      expiresAtMs: null,
      revision: i,
    });
  }
  const svids = entries.slice(0, svidCount).map((entry) => {
    const key = generateKey('ec-p256');
    const leaf = mintX509Svid(
      {
        spiffeId: parseSpiffeId(entry.spiffeId),
        publicKey: createPublicKey(key).export({ type: 'spki', format: 'der' }),
        notBeforeMs: nowMs,
        notAfterMs: nowMs + HOUR_MS,
      },
      issuer,
    );
    const fieldsKey = JSON.stringify([entry.spiffeId, entry.dnsNames, entry.x509SvidTtlMs]);
    const described = describeCertificate(leaf);
    return {
      entryId: entry.id,
      fieldsKey,
      spiffeId: entry.spiffeId,
      chain: [leaf],
      key,
      renewAtMs: nowMs,
      notBeforeMs: described.notBeforeMs,
      expiresAtMs: described.notAfterMs,
      serialHex: described.serialHex,
      topIssuer: topIssuerOf([leaf]),
    };
  });
  return {
    agentId: AGENT,
    revision: svidCount * 2,
    bundle: createTrustBundle({ trustDomain: TD, x509Authorities: [caDer] }),
    federatedBundles: new Map(),
    taintedAuthorities: [],
    entries,
    svids,
  };
}

async function measure(svidCount: number, figures: Figure[]): Promise<void> {
  const cache = await cacheOf(svidCount);
  const dataDir = mkdtempSync(join(tmpdir(), 'sigil-bench-svid-store-'));
  try {
    const options = {
      dataDir,
      clock: systemClock,
      logger: pino({ level: 'silent' }),
      trustDomain: TD,
      maxSvids: svidCount,
      snapshot: () => cache,
    };
    const file = join(dataDir, 'workload-svids.json');
    const writes = await timed(async () => {
      const store = createSvidStore('disk', options);
      store.markDirty();
      await store.close();
    });
    let loadedSvids = 0;
    const loads = await timed(async () => {
      loadedSvids = (await createSvidStore('disk', options).load(AGENT))?.svids.length ?? 0;
    });
    const text = readFileSync(file);
    const control = join(dataDir, 'control.json');
    const controlWrites = await timed(() => {
      const fd = openSync(control, 'w', 0o600);
      writeFileSync(fd, text);
      fsyncSync(fd);
      closeSync(fd);
    });
    const controlLoads = await timed(() => void JSON.parse(readFileSync(control, 'utf8')));
    process.stdout.write(
      `${svidCount} SVIDs (${loadedSvids} loaded back), ${cache.entries.length} entries, file ${(statSync(file).size / 1024 / 1024).toFixed(1)} MiB\n` +
        `  svid_store  write ${spread(writes)}   load ${spread(loads)}\n` +
        `  control     write ${spread(controlWrites)}   load ${spread(controlLoads)}\n`,
    );
    const msOf = (v: number) => `${v.toFixed(0)} ms`;
    const size = `${(statSync(file).size / 1024 / 1024).toFixed(1)} MiB`;
    for (const [what, samples, control] of [
      ['write', writes, controlWrites],
      ['load', loads, controlLoads],
    ] as const) {
      figures.push({
        name: `SVID store ${what}, ${svidCount.toLocaleString('en')} SVIDs (${size})`,
        value: msOf(samples[2]!),
        range: rangeOf(samples, msOf),
        reference: `one fsync'd ${what === 'write' ? 'write' : 'read + JSON.parse'} of the same bytes: ${msOf(control[2]!)}`,
      });
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Five runs of `run`, in milliseconds. */
async function timed(run: () => unknown): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const startMs = performance.now();
    await run();
    samples.push(performance.now() - startMs);
  }
  return samples.sort((a, b) => a - b);
}

function spread(sorted: readonly number[]): string {
  return `${sorted[2]!.toFixed(0)} ms (${sorted[0]!.toFixed(0)}–${sorted[4]!.toFixed(0)})`.padEnd(20);
}

const loadLine = () => `load average ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores`;
process.stdout.write(`before: ${loadLine()}\n`);
const figures: Figure[] = [];
await measure(1_000, figures);
if (!process.argv.includes('--quick')) await measure(10_000, figures);
process.stdout.write(`after: ${loadLine()}\n`);
reportResults(process.argv, { bench: 'svid-store', figures });
