// bench:proxy's `sweep` scenario: latency percentiles against a fixed offered rate, for the app
// reached directly, through the Sigil pair and through the HAProxy pair (HTTP/1.1), from the same
// open-loop client as the 1,000 req/s runs (proxy-load.ts). Rates double from SWEEP_RATES' first
// until every pair has saturated; a path that could not keep up is not tried at higher rates (its
// curve ends at its knee, the most telling point). The curves go into bench/latency-vs-rate.svg.
import type { LoadResult } from './proxy-load.js';
import { type LoadClient, RATE_WARMUP_MS } from './proxy-measure.js';
import { fmt, log } from './proxy-report.js';
import type { LatencyCurve, LatencyPoint } from './results.js';

/** The first rates, req/s: the latency a light load sees, then up towards Sigil's knee (~5k here). */
export const SWEEP_RATES = [250, 500, 1_000, 2_000, 4_000, 8_000] as const;
/** `--quick`'s: one light rate, one near the knee, one past it. */
export const QUICK_SWEEP_RATES = [500, 2_000, 8_000] as const;
/** Beyond this the load client itself (one Node process) is the bottleneck, not the path measured. */
const MAX_RATE_PER_S = 16_000;
/** A run answering fewer than this share of what was offered, or failing any request, is saturated. */
const KEEPS_UP_SHARE = 0.9;

export interface SweepTarget {
  readonly name: string;
  readonly port: number;
  /** The reference path (direct) is not a pair: it keeps being run while a pair still keeps up. */
  readonly isPair: boolean;
}

export function pointOf(ratePerS: number, seconds: number, load: LoadResult): LatencyPoint {
  return {
    ratePerS,
    achievedPerS: load.completed / Math.max(seconds, load.elapsedMs / 1_000),
    p50Ms: load.p50Ms,
    p99Ms: load.p99Ms,
    errors: load.errors + load.dropped,
  };
}

export function keepsUp(p: LatencyPoint): boolean {
  return p.errors === 0 && p.achievedPerS >= KEEPS_UP_SHARE * p.ratePerS;
}

/** Seconds the sweep takes at most before saturation stops it, for the bench's estimate. */
export function sweepEstimateS(targets: number, seconds: number, rates: readonly number[]): number {
  return rates.length * targets * (RATE_WARMUP_MS / 1_000 + seconds + 0.3);
}

export async function runRateSweep(
  client: LoadClient,
  targets: readonly SweepTarget[],
  seconds: number,
  rates: readonly number[],
): Promise<LatencyCurve[]> {
  const points = new Map<string, LatencyPoint[]>(targets.map((t) => [t.name, []]));
  const saturated = new Set<string>();
  const schedule = [...rates];
  for (let i = 0; i < schedule.length; i++) {
    const rate = schedule[i]!;
    // Rotated each rate, like the repeats: no path always runs right after another.
    const order = targets.map((_, k) => targets[(k + i) % targets.length]!);
    const cells: string[] = [];
    for (const target of order) {
      if (saturated.has(target.name)) continue;
      const load = await client.run(
        {
          protocol: 'h1',
          port: target.port,
          ratePerS: rate,
          warmupMs: RATE_WARMUP_MS,
          durationMs: seconds * 1_000,
        },
        () => {},
      );
      const point = pointOf(rate, seconds, load);
      points.get(target.name)!.push(point);
      if (!keepsUp(point)) saturated.add(target.name);
      cells.push(
        `${target.name} p50 ${fmt(point.p50Ms, 2)} / p99 ${fmt(point.p99Ms, 2)} ms${keepsUp(point) ? '' : ` (saturated: ${fmt(point.achievedPerS)} req/s answered, ${fmt(point.errors)} failed)`}`,
      );
    }
    log(`sweep ${fmt(rate)} req/s: ${cells.join('; ')}`);
    const pairsLeft = targets.some((t) => t.isPair && !saturated.has(t.name));
    if (i === schedule.length - 1 && pairsLeft && rate * 2 <= MAX_RATE_PER_S) schedule.push(rate * 2);
    if (!pairsLeft) break;
  }
  return targets.map((t) => ({ name: t.name, points: points.get(t.name)! }));
}
