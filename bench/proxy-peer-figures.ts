// The peers' figures for bench/RESULTS.md: nginx's and Caddy's pairs as ratios to HAProxy's within
// each repeat (median and range), like Sigil's, so the results place Sigil among a second C proxy and
// a Go proxy. Information rows only: no target applies to another project's proxy.
import type { PeerName } from './proxy-peers.js';
import { PEER_LABELS } from './proxy-peers.js';
import { fmt, fmtRatio, median } from './proxy-report.js';
import { type RunResult, type ScenarioRuns, satCpu, throughput } from './proxy-scenario-figures.js';
import type { Figure } from './results.js';

const rateCpu = (r: RunResult) => (r.rate!.cpuMs! * 1_000) / (r.rate!.load.completed + r.rate!.load.errors);
const p99 = (r: RunResult) => r.rate!.load.p99Ms;

const MEASURES: ReadonlyArray<{
  readonly name: string;
  readonly of: (r: RunResult) => number;
  readonly unit: (v: number) => string;
}> = [
  { name: 'CPU per request (saturated)', of: satCpu, unit: (v) => `${fmt(v, 1)} µs/request` },
  { name: 'throughput', of: throughput, unit: (v) => `${fmt(v)} req/s` },
  { name: 'CPU per request at 1k req/s', of: rateCpu, unit: (v) => `${fmt(v, 1)} µs/request` },
  { name: 'p99 at 1k req/s', of: p99, unit: (v) => `${v.toFixed(3)} ms` },
];

/** "nginx ÷ HAProxy" rows of one scenario, for each peer that ran in it. */
export function peerFigures(s: ScenarioRuns, peers: readonly PeerName[]): Figure[] {
  const figures: Figure[] = [];
  for (const peer of peers) {
    for (const m of MEASURES) {
      const own = s.repeats.map((rep) => m.of(rep[peer]));
      const ref = s.repeats.map((rep) => m.of(rep.haproxy));
      const sigil = s.repeats.map((rep) => m.of(rep.sigil));
      const ratio = fmtRatio(own.map((v, i) => v / ref[i]!));
      const sigilRatio = fmtRatio(sigil.map((v, i) => v / ref[i]!));
      figures.push({
        name: `${s.key}: ${m.name}, ${PEER_LABELS[peer]} ÷ HAProxy`,
        value: ratio.median,
        range: ratio.spread || undefined,
        reference: `${PEER_LABELS[peer]} pair ${m.unit(median(own))}, HAProxy pair ${m.unit(median(ref))}; Sigil ÷ HAProxy ${sigilRatio.median}`,
      });
    }
  }
  return figures;
}

export interface PeerMemory {
  readonly name: PeerName;
  readonly idleMb: number;
  readonly loadMb: number;
}

/** RSS of each peer's sidecar on one side, idle and under load, against HAProxy's same side. */
export function peerMemoryFigures(
  label: string,
  peers: readonly PeerMemory[],
  haproxy: { readonly idleMb: number; readonly loadMb: number },
): Figure[] {
  return peers.flatMap((p) => [
    {
      name: `RSS idle, ${PEER_LABELS[p.name]} ${label}`,
      value: `${fmt(p.idleMb, 1)} MB`,
      reference: `HAProxy ${fmt(haproxy.idleMb, 1)} MB`,
    },
    {
      name: `RSS under load, ${PEER_LABELS[p.name]} ${label}`,
      value: `${fmt(p.loadMb, 1)} MB`,
      reference: `HAProxy ${fmt(haproxy.loadMb, 1)} MB`,
    },
  ]);
}
