// What each bench hands `npm run bench` (bench/all.ts): its figures, already formatted, with target,
// source issue and the reference measured in the same run, written as JSON to the file named by
// `--results PATH`. A bench run alone, without the flag, writes nothing and prints as before.
// Kept apart from the benches' own tables so one writer (results-md.ts) renders every bench alike.
import { readFileSync, writeFileSync } from 'node:fs';

/** One row of bench/RESULTS.md. */
export interface Figure {
  readonly name: string;
  /** The median over repeats (or the single value), formatted with its unit. */
  readonly value: string;
  /** Lowest–highest over repeats, formatted; absent for a single measurement. */
  readonly range?: string;
  /** The limit as the bench checks it, e.g. `≥ 5,000 SVIDs/s`; absent for an informational figure. */
  readonly target?: string;
  /** Where the target comes from: `issue 2`, or the bench itself when no issue sets one. */
  readonly source?: string;
  /** What the same run measured to compare with (HAProxy, the Node floor, the raw ECDSA rate…). */
  readonly reference?: string;
  /** Whether the target was met; absent: informational. */
  readonly pass?: boolean;
  /**
   * For a load-gated bench (bench:proxy, proxy-repeats.ts): how many repeats the median and range are
   * over and the other load they saw, e.g. `valid 3 of 3, other load 0.02–0.11 cores`.
   */
  readonly repeats?: string;
}

/** One fixed rate of the latency sweep (proxy-rate-sweep.ts). */
export interface LatencyPoint {
  readonly ratePerS: number;
  /** Requests answered per second: below the rate once the path saturates. */
  readonly achievedPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

export interface LatencyCurve {
  readonly name: string;
  readonly points: readonly LatencyPoint[];
}

export interface BenchResults {
  readonly bench: string;
  readonly figures: readonly Figure[];
  readonly notes?: readonly string[];
  /** Cores' worth of CPU others than the bench used during its measured runs, as it measured them. */
  readonly backgroundCores?: number;
  readonly curves?: readonly LatencyCurve[];
}

/** The path given with `--results`, if any. */
export function resultsPathOf(argv: readonly string[]): string | undefined {
  const at = argv.indexOf('--results');
  if (at < 0) return undefined;
  const file = argv[at + 1];
  if (file === undefined || file.startsWith('--')) throw new Error('--results: expected a file path');
  return file;
}

/** Writes `results` where `--results` says; nothing without the flag. */
export function reportResults(argv: readonly string[], results: BenchResults): void {
  const file = resultsPathOf(argv);
  if (file !== undefined) writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
}

/** Reads a file reportResults wrote, checking the shape enough to render it. */
export function readResults(file: string): BenchResults {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  if (typeof parsed?.bench !== 'string' || !Array.isArray(parsed.figures))
    throw new Error(`${file}: not a bench results file (needs "bench" and "figures")`);
  return parsed;
}

/** `low–high` of `values` formatted by `format`; empty for fewer than two finite values. */
export function rangeOf(values: readonly number[], format: (v: number) => string): string | undefined {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length < 2) return undefined;
  return `${format(Math.min(...finite))}–${format(Math.max(...finite))}`;
}
