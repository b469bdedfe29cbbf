// The flags of bench:proxy (proxy.ts) and its --help text: parsed apart from the orchestration so
// that what a run does can be read from one place.
import path from 'node:path';
import type { PeerName } from './proxy-peers.js';
import { parsePeers } from './proxy-peers.js';
import { QUICK_SWEEP_RATES, SWEEP_RATES } from './proxy-rate-sweep.js';
import { DEFAULT_MAX_LOAD_CORES, DEFAULT_RETRIES, type GateOptions } from './proxy-repeats.js';
import { FAULT_RATE_PER_S } from './proxy-resilience-faults.js';
import type { ScenarioKey } from './proxy-scenario-figures.js';
import type { BenchPipelining } from './proxy-setup.js';

export interface Flags {
  readonly repeats: number;
  readonly satSeconds: number;
  readonly rateSeconds: number;
  readonly only: readonly ScenarioKey[];
  /** `resilience` was among --only (it is by default). */
  readonly resilience: boolean;
  /** `traffic` (proxy-traffic.ts: routes and tracing) was among --only (it is by default). */
  readonly traffic: boolean;
  /** `sweep` was among --only (not by default): latency against rate, proxy-rate-sweep.ts. */
  readonly sweep: boolean;
  readonly sweepSeconds: number;
  /** The sweep's rates: SWEEP_RATES, or with --sweep-seconds 1 (a smoke run) QUICK_SWEEP_RATES. */
  readonly sweepRates: readonly number[];
  readonly faultRatePerS: number;
  readonly faultSeconds: number;
  readonly app: 'native' | 'node';
  readonly cpuProfDir: string | undefined;
  readonly proxyBin: string | undefined;
  readonly floor: boolean;
  /** --max-load and --retries: the load gate of every repeat (proxy-repeats.ts). */
  readonly gate: GateOptions;
  /** Sigil's outbound HTTP/1.1 service pipelined (--pipelining DEPTH[xCONNECTIONS]); undefined: off. */
  readonly pipelining: BenchPipelining | undefined;
  /** The peers besides HAProxy (--peers). */
  readonly peers: readonly PeerName[];
}

/** `8` or `10x5`: depth, then optionally pipelined connections per endpoint. */
function parsePipelining(raw: string | undefined): BenchPipelining | undefined {
  if (raw === undefined) return undefined;
  const match = /^(\d+)(?:x(\d+))?$/.exec(raw);
  if (match === null) throw new Error(`--pipelining: expected DEPTH or DEPTHxCONNECTIONS, got ${raw}`);
  return { depth: Number(match[1]), connections: match[2] === undefined ? undefined : Number(match[2]) };
}

export function parseFlags(argv: readonly string[]): Flags {
  const value = (name: string): string | undefined => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const number = (name: string, fallback: number): number => {
    const raw = value(name);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: expected a positive number, got ${raw}`);
    return n;
  };
  const atLeastZero = (name: string, fallback: number): number => {
    const raw = value(name);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: expected a number ≥ 0, got ${raw}`);
    return n;
  };
  const keys = (value('--only') ?? 'h1,tcp,h2,resilience,traffic').split(',').map((s) => s.trim());
  for (const key of keys)
    if (!['h1', 'tcp', 'h2', 'resilience', 'traffic', 'sweep'].includes(key))
      throw new Error(`--only: unknown scenario ${key}`);
  const only = keys.filter((key) => !['resilience', 'traffic', 'sweep'].includes(key)) as ScenarioKey[];
  const sweepSeconds = number('--sweep-seconds', 3);
  const prof = value('--cpu-prof');
  const peers = parsePeers(value('--peers'));
  return {
    repeats: Math.round(number('--repeats', 3)),
    satSeconds: Math.round(number('--sat-seconds', 4)),
    rateSeconds: number('--rate-seconds', 4),
    only,
    resilience: keys.includes('resilience'),
    traffic: keys.includes('traffic'),
    sweep: keys.includes('sweep'),
    sweepSeconds,
    sweepRates: sweepSeconds < 2 ? QUICK_SWEEP_RATES : SWEEP_RATES,
    // Why this default rate: FAULT_RATE_PER_S in proxy-resilience-faults.ts.
    faultRatePerS: number('--fault-rate', FAULT_RATE_PER_S),
    faultSeconds: number('--fault-seconds', 5),
    app: argv.includes('--node-app') ? 'node' : 'native',
    cpuProfDir: prof === undefined ? undefined : path.resolve(prof),
    proxyBin: value('--sigil-proxy') === undefined ? undefined : path.resolve(value('--sigil-proxy')!),
    floor: !argv.includes('--no-floor'),
    gate: {
      maxLoadCores: atLeastZero('--max-load', DEFAULT_MAX_LOAD_CORES),
      retries: Math.round(atLeastZero('--retries', DEFAULT_RETRIES)),
    },
    pipelining: parsePipelining(value('--pipelining')),
    // Sigil-only runs (resilience, traffic) start no peer: nothing to install or interleave.
    peers: only.length === 0 ? [] : peers,
  };
}

export const USAGE = `Usage: npm run bench:proxy [-- FLAGS]

Sigil's sidecar pair against HAProxy's (and the Node floor), interleaved; scenarios h1, tcp, h2
(against HAProxy), resilience and traffic (Sigil only). Exit status 1 when a target is missed.

Flags:
  --only LIST          scenarios, comma-separated (default h1,tcp,h2,resilience,traffic; also sweep)
  --repeats N          interleaved repeats (default 3)
  --sat-seconds S      each saturated run (default 4)
  --rate-seconds S     each run at 1,000 req/s (default 4)
  --fault-rate R       resilience: the load on the failing app, req/s (default 50)
  --fault-seconds S    resilience: each fault run (default 5)
  --sweep-seconds S    sweep: each rate (default 3; under 2, three rates only)
  --results FILE       write the figures as JSON for bench/RESULTS.md (npm run bench)
  --node-app           a node:http app instead of HAProxy's responder
  --cpu-prof DIR       V8 CPU profiles of the h1/tcp/h2 Sigil sidecars into DIR
  --sigil-proxy PATH   another build's bin/sigil-proxy
  --no-floor           leave the Node floor pair out
  --max-load CORES     a repeat taken with more than CORES of other processes' CPU is no figure: wait
                       (up to 30 s) for quiet and take it again (default ${DEFAULT_MAX_LOAD_CORES})
  --retries N          retakes of such a repeat before it is counted invalid (default ${DEFAULT_RETRIES})
  --pipelining D[xC]   Sigil's HTTP/1.1 hop pipelined D deep on C connections (opt-in; default off)
  --peers LIST         mTLS sidecar pairs to place Sigil among (default haproxy,nginx,caddy; HAProxy
                       always runs: every ratio divides by it; nginx: h1, tcp, h2; Caddy: h1 only)
  -h, --help           this help
`;
