// One Sigil pair measured the way the resilience and traffic scenarios both compare variants: saturated
// with wrk, then at RATE_PER_S with the open-loop client, reading the pair's CPU (both sidecars, /proc)
// around each run. Variants are run interleaved, the order given by the caller (swapped every repeat).
import type { LoadResult } from './proxy-load.js';
import {
  cpuMsOf,
  cpuOf,
  type LoadClient,
  PRIMING_S,
  RATE_PER_S,
  RATE_WARMUP_MS,
  runWrk,
  type SatResult,
} from './proxy-measure.js';

/** What proxy.ts gives the scenarios that start and measure their own pairs. */
export interface PairScenarioEnv {
  /** A directory for the sidecars' config files, readable by their uids. */
  readonly root: string;
  readonly workloadApi: string;
  readonly policyPath: string;
  readonly serverId: string;
  readonly clientUid: number;
  readonly serverUid: number;
  /** A port from the bench's one batch of free ports (each scenario says how many it takes). */
  readonly takePort: () => number;
  /** The bench's other processes (server, agent, app): counted as the bench's own in the machine load. */
  readonly benchPids: readonly number[];
  /** Another build's bin/sigil-proxy, as proxy.ts's --sigil-proxy. */
  readonly proxyBin: string | undefined;
  readonly repeats: number;
  readonly satSeconds: number;
  readonly rateSeconds: number;
}

/** Where a variant is reached, and the processes whose CPU it costs. */
export interface PairTarget {
  readonly port: number;
  readonly pids: readonly number[];
}

export interface PairRun {
  readonly sat: SatResult;
  readonly rate: { readonly load: LoadResult; readonly cpuMs: number };
}

/** Seconds one repeat of `variants` pairs takes, for the bench's estimate. */
export function pairRepeatS(variants: number, satSeconds: number, rateSeconds: number): number {
  return variants * (PRIMING_S + satSeconds + 0.4 + RATE_WARMUP_MS / 1_000 + rateSeconds + 0.3);
}

/** wrk against the pair for `seconds`, with the pair's CPU (user+system, and system alone) meanwhile. */
export async function saturatePair(target: PairTarget, seconds: number): Promise<SatResult> {
  const before = cpuOf(target.pids);
  const res = await runWrk(target.port, seconds);
  const after = cpuOf(target.pids);
  const sysMs = after.sysMs - before.sysMs;
  return { ...res, cpuMs: after.userMs - before.userMs + sysMs, sysMs };
}

/** The open-loop client at RATE_PER_S for `seconds`, the pair's CPU read after its warm-up. */
async function pairAtRate(client: LoadClient, target: PairTarget, seconds: number): Promise<PairRun['rate']> {
  let before = 0;
  const load = await client.run(
    {
      protocol: 'h1',
      port: target.port,
      ratePerS: RATE_PER_S,
      warmupMs: RATE_WARMUP_MS,
      durationMs: seconds * 1_000,
    },
    () => {
      before = cpuMsOf(target.pids);
    },
  );
  return { load, cpuMs: cpuMsOf(target.pids) - before };
}

/**
 * One repeat: every variant in `order` primed (unmeasured) then saturated, then every variant at the
 * fixed rate, in the same order.
 */
export async function runPairRepeat<V extends string>(
  order: readonly V[],
  targetOf: (variant: V) => PairTarget,
  client: LoadClient,
  satSeconds: number,
  rateSeconds: number,
): Promise<Record<V, PairRun>> {
  const sat = {} as Record<V, SatResult>;
  for (const variant of order) {
    await saturatePair(targetOf(variant), PRIMING_S);
    sat[variant] = await saturatePair(targetOf(variant), satSeconds);
  }
  const runs = {} as Record<V, PairRun>;
  for (const variant of order) {
    runs[variant] = { sat: sat[variant], rate: await pairAtRate(client, targetOf(variant), rateSeconds) };
  }
  return runs;
}

/** CPU µs per request of the saturated run. */
export function satCpuUs(run: PairRun): number {
  return (run.sat.cpuMs! * 1_000) / run.sat.requests;
}

/** CPU µs per request of the fixed-rate run (every request sent and answered, errors included). */
export function rateCpuUs(run: PairRun): number {
  return (run.rate.cpuMs * 1_000) / (run.rate.load.completed + run.rate.load.errors);
}
