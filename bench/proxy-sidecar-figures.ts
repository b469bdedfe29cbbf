// Issue 14's figures at the fixed 1,000 req/s: each sidecar's own CPU per request (user+system of that
// process alone, client and server side apart), the figure Istio publishes for Envoy, read beside every
// pair measured in the same repeats; and HTTP/1.1 p99 as a ratio to HAProxy's within each repeat.
// Pure: valid repeats in (proxy-scenario-figures.ts's ScenarioRuns), figures out.
import { type Check, fmt, fmtRatio, median } from './proxy-report.js';
import type { RunResult, ScenarioRuns, TargetName } from './proxy-scenario-figures.js';
import { ISTIO_REFERENCE, SIDE_LABEL, SIDES, type Side, SOURCES, TARGETS } from './proxy-targets.js';
import { type Figure, rangeOf } from './results.js';

/** How the reference text names a pair; a target not listed goes by its key. */
const PAIR_NAMES: Partial<Record<TargetName, string>> = {
  sigil: 'Sigil',
  floor: 'Node floor',
  haproxy: 'HAProxy',
  nginx: 'nginx',
  caddy: 'Caddy',
};
export const pairName = (t: TargetName): string => PAIR_NAMES[t] ?? t;

/** One side's CPU µs per request of a run at the fixed rate (requests answered or failed); NaN without sides (direct). */
export function rateSideCpuUs(side: Side): (r: RunResult) => number {
  return (r) => {
    const sides = r.rate!.sideCpuMs;
    if (!sides) return Number.NaN;
    return (sides[side] * 1_000) / (r.rate!.load.completed + r.rate!.load.errors);
  };
}

/** The pairs of these repeats with per-side CPU, in the order the repeats list them. */
export function pairsWithSides(s: ScenarioRuns): TargetName[] {
  const first = s.repeats[0];
  if (!first) return [];
  return (Object.keys(first) as TargetName[]).filter((t) => first[t].rate?.sideCpuMs);
}

const us = (v: number) => `${fmt(v, 1)} µs`;

export function sidecarRateFigures(s: ScenarioRuns): { checks: Check[]; info: Figure[] } {
  const checks: Check[] = [];
  const info: Figure[] = [];
  const per = (t: TargetName, f: (r: RunResult) => number) => s.repeats.map((rep) => f(rep[t]));
  const limit = TARGETS.h1.rateCpuPerSidecarUs;
  for (const side of SIDES) {
    const f = rateSideCpuUs(side);
    const values = s.repeats.length > 0 && s.repeats[0]!.sigil.rate?.sideCpuMs ? per('sigil', f) : [];
    const others = pairsWithSides(s)
      .filter((t) => t !== 'sigil')
      .map((t) => `${pairName(t)} ${us(median(per(t, f)))}`);
    const figure = {
      name: `${s.key}: CPU per request at 1k req/s, Sigil ${SIDE_LABEL[side]}`,
      value: us(median(values)),
      range: rangeOf(values, us),
      reference: [ISTIO_REFERENCE, ...others].join('; '),
    };
    if (s.key === 'h1')
      checks.push({
        ...figure,
        target: `< ${limit} µs`,
        source: SOURCES.h1.rateCpuPerSidecarUs,
        pass: median(values) < limit,
      });
    else info.push(figure);
  }
  if (s.key === 'h1') {
    const p99 = (r: RunResult) => r.rate!.load.p99Ms;
    const ratios = s.repeats.map((rep) => p99(rep.sigil) / p99(rep.haproxy));
    const ratio = median(ratios);
    const ms = (v: number) => `${v.toFixed(3)} ms`;
    checks.push({
      name: 'h1: p99 at 1k req/s vs HAProxy',
      value: `${ratio.toFixed(2)}x`,
      range: fmtRatio(ratios).spread || undefined,
      target: `≤ ${TARGETS.h1.p99Ratio}x`,
      source: SOURCES.h1.p99Ratio,
      reference: `Sigil ${ms(median(per('sigil', p99)))}, HAProxy pair ${ms(median(per('haproxy', p99)))}, direct ${ms(median(per('direct', p99)))}`,
      pass: ratio <= TARGETS.h1.p99Ratio,
    });
  }
  return { checks, info };
}
