// The figures bench:proxy judges for one of its h1/tcp/h2 scenarios: Sigil's pair as a ratio to
// HAProxy's within each repeat (median and range over the valid repeats only, proxy-repeats.ts), with
// the reference measured in the same run (HAProxy's own figure, the Node floor's ratio, direct),
// against issue 14's targets and issue 5's p50 (proxy-targets.ts); what has no target (h2, p99 alone)
// goes out as information. Every figure carries its scenario's gate line (valid repeats, load seen);
// with no valid repeat every check says so and is missed. Apart from proxy.ts, which measures and prints.
import type { LoadResult } from './proxy-load.js';
import type { SatResult } from './proxy-measure.js';
import { type GateSummary, gateLine } from './proxy-repeats.js';
import { type Check, fmt, fmtRatio, MAX_ERROR_SHARE, median } from './proxy-report.js';
import { sidecarRateFigures } from './proxy-sidecar-figures.js';
import type { Side } from './proxy-targets.js';
import { SOURCES, TARGETS } from './proxy-targets.js';
import { type Figure, rangeOf } from './results.js';

/**
 * `floor`: bench/node-floor-proxy.ts, the recommended Node design with none of Sigil's features,
 * run in the same sitting so each figure of Sigil's reads against what Node can do here at all.
 * `nginx`, `caddy`: peers' mTLS sidecar pairs (proxy-peers.ts), read against HAProxy like Sigil.
 */
export type TargetName = 'direct' | 'sigil' | 'floor' | 'haproxy' | 'nginx' | 'caddy';
export type ScenarioKey = 'h1' | 'tcp' | 'h2';

export interface RateResult {
  readonly load: LoadResult;
  readonly cpuMs: number | null;
  /** cpuMs split by sidecar (proxy-targets.ts sidesOf); null for direct. */
  readonly sideCpuMs: Readonly<Record<Side, number>> | null;
}

export interface RunResult {
  sat?: SatResult;
  rate?: RateResult;
}

export interface ScenarioRuns {
  readonly key: ScenarioKey;
  /** Each valid repeat's runs of this scenario, by target (invalid ones are no figures). */
  readonly repeats: ReadonlyArray<Record<TargetName, RunResult>>;
  /** What the load gate did over this scenario's repeats (proxy-repeats.ts). */
  readonly gate: GateSummary;
  /** The Node floor pair ran (not --no-floor). */
  readonly hasFloor: boolean;
}

/** CPU µs per request of a saturated run (both sidecars). */
export const satCpu = (r: RunResult) => (r.sat!.cpuMs! * 1_000) / r.sat!.requests;
export const throughput = (r: RunResult) => r.sat!.reqPerS;

/** Failed requests of `target` over every run of the scenario: saturated, and at the fixed rate. */
export function errorsOf(s: ScenarioRuns, target: TargetName): number {
  return s.repeats.reduce(
    (sum, rep) =>
      sum + rep[target].sat!.errors + rep[target].rate!.load.errors + rep[target].rate!.load.dropped,
    0,
  );
}

export function requestsOf(s: ScenarioRuns, target: TargetName): number {
  return s.repeats.reduce((sum, rep) => sum + rep[target].sat!.requests + rep[target].rate!.load.sent, 0);
}

/**
 * Every figure of the scenario with its gate line; with no valid repeat, no figure at all: each says
 * so, and each check is missed (issue 14: a busy machine gives no verdict, least of all a pass).
 */
export function scenarioFigures(s: ScenarioRuns): { checks: Check[]; info: Figure[] } {
  const figures = measuredFigures(s);
  const sidecars = sidecarRateFigures(s);
  const checks = [...figures.checks, ...sidecars.checks];
  const info = [...figures.info, ...sidecars.info];
  const line = gateLine(s.gate);
  if (s.gate.valid === 0 || s.repeats.length === 0)
    return {
      checks: checks.map((c) => ({ ...c, value: line, range: undefined, reference: undefined, pass: false })),
      info: info.map((f) => ({ ...f, value: line, range: undefined, reference: undefined })),
    };
  return {
    checks: checks.map((c) => ({ ...c, repeats: line })),
    info: info.map((f) => ({ ...f, repeats: line })),
  };
}

function measuredFigures(s: ScenarioRuns): { checks: Check[]; info: Figure[] } {
  const checks: Check[] = [];
  const info: Figure[] = [];
  const per = (target: TargetName, f: (r: RunResult) => number) =>
    target === 'floor' && !s.hasFloor ? [] : s.repeats.map((rep) => f(rep[target]));
  const ratioOf = (target: TargetName) => (f: (r: RunResult) => number) =>
    per(target, f).map((v, i) => v / f(s.repeats[i]!.haproxy));
  const ratio = ratioOf('sigil');
  const floorRatio = ratioOf('floor');
  const cpuRatio = median(ratio(satCpu));
  const tputRatio = median(ratio((r) => r.sat!.reqPerS));
  const limits = s.key === 'h1' ? TARGETS.h1 : s.key === 'tcp' ? TARGETS.tcp : null;
  const sources = s.key === 'h1' ? SOURCES.h1 : s.key === 'tcp' ? SOURCES.tcp : null;
  const spread = (values: number[]) => fmtRatio(values).spread || undefined;
  const medianOf = (t: TargetName, f: (r: RunResult) => number, digits: number) =>
    fmt(median(per(t, f)), digits);
  const floorSays = (f: (r: RunResult) => number) =>
    s.hasFloor ? `; Node floor ÷ HAProxy ${fmtRatio(floorRatio(f)).median}` : '';
  const cpuReference = `HAProxy pair ${medianOf('haproxy', satCpu, 1)} µs/request${floorSays(satCpu)}`;
  const tputReference = `HAProxy pair ${medianOf('haproxy', throughput, 0)} req/s, direct ${medianOf('direct', throughput, 0)}${floorSays(throughput)}`;
  if (limits) {
    checks.push({
      name: `${s.key}: CPU per request (saturated) vs HAProxy`,
      value: `${cpuRatio.toFixed(2)}x`,
      range: spread(ratio(satCpu)),
      target: `≤ ${limits.cpuRatio}x`,
      source: sources!.cpuRatio,
      reference: cpuReference,
      pass: cpuRatio <= limits.cpuRatio,
    });
    checks.push({
      name: `${s.key}: throughput vs HAProxy`,
      value: `${tputRatio.toFixed(2)}x`,
      range: spread(ratio(throughput)),
      target: `≥ ${limits.throughputRatio}x`,
      source: sources!.throughputRatio,
      reference: tputReference,
      pass: tputRatio >= limits.throughputRatio,
    });
  } else {
    info.push(
      {
        name: `${s.key}: CPU per request (saturated) vs HAProxy`,
        value: `${cpuRatio.toFixed(2)}x`,
        range: spread(ratio(satCpu)),
        reference: cpuReference,
      },
      {
        name: `${s.key}: throughput vs HAProxy`,
        value: `${tputRatio.toFixed(2)}x`,
        range: spread(ratio(throughput)),
        reference: tputReference,
      },
    );
  }
  const msOf = (v: number) => `${v.toFixed(3)} ms`;
  const p99s = per('sigil', (r) => r.rate!.load.p99Ms);
  info.push({
    name: `${s.key}: p99 at 1k req/s through Sigil`,
    value: msOf(median(p99s)),
    range: rangeOf(p99s, msOf),
    reference: `HAProxy pair ${msOf(median(per('haproxy', (r) => r.rate!.load.p99Ms)))}, direct ${msOf(median(per('direct', (r) => r.rate!.load.p99Ms)))}`,
  });
  if (s.key === 'h1') {
    const overs = s.repeats.map((rep) => rep.sigil.rate!.load.p50Ms - rep.haproxy.rate!.load.p50Ms);
    const overMs = median(overs);
    const signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(3)} ms`;
    checks.push({
      name: 'h1: p50 at 1k req/s over HAProxy',
      value: signed(overMs),
      range: rangeOf(overs, signed),
      target: `≤ +${TARGETS.h1.p50OverMs} ms`,
      source: SOURCES.h1.p50OverMs,
      reference: `HAProxy pair p50 ${msOf(median(per('haproxy', (r) => r.rate!.load.p50Ms)))}, direct ${msOf(median(per('direct', (r) => r.rate!.load.p50Ms)))}`,
      pass: overMs <= TARGETS.h1.p50OverMs,
    });
  }
  const sigilShare = errorsOf(s, 'sigil') / Math.max(1, requestsOf(s, 'sigil'));
  checks.push({
    name: `${s.key}: failed requests through Sigil`,
    value: `${fmt(errorsOf(s, 'sigil'))} of ${fmt(requestsOf(s, 'sigil'))}`,
    target: `≤ ${MAX_ERROR_SHARE * 100}%`,
    source: 'bench:proxy',
    reference: `HAProxy pair: ${fmt(errorsOf(s, 'haproxy'))} of ${fmt(requestsOf(s, 'haproxy'))}`,
    pass: sigilShare <= MAX_ERROR_SHARE,
  });
  return { checks, info };
}
