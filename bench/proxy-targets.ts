// bench:proxy's targets and where they come from. Issue 14 (sidecar cost) replaces issue 5's where it
// is stricter and adds per-sidecar CPU at 1,000 req/s and p99; issue 5's p50 check stays. A target is
// never lowered: proxy-targets.test.ts checks every effective limit is at least as strict as issue 5's.

/** Issue 5's targets (from the proxy performance notes' measured floors), kept as the record of what 14 tightened. */
export const ISSUE_5_TARGETS = {
  h1: { cpuRatio: 2.5, throughputRatio: 0.5, p50OverMs: 0.5 },
  tcp: { cpuRatio: 1.6, throughputRatio: 0.7 },
  rssIdleMb: 60,
  rssLoadMb: 120,
} as const;

/** The limits the bench checks; `SOURCES` names the issue of each. */
export const TARGETS = {
  h1: {
    /** Pair CPU per request saturated ÷ HAProxy's, same repeat: below today's Node floor (2.09x). */
    cpuRatio: 1.9,
    throughputRatio: 0.6,
    p50OverMs: ISSUE_5_TARGETS.h1.p50OverMs,
    /** Each Sigil sidecar's own CPU per request at 1,000 req/s, µs: clearly under Istio's 200. */
    rateCpuPerSidecarUs: 150,
    /** p99 at 1,000 req/s ÷ HAProxy's, same repeat. */
    p99Ratio: 1.3,
  },
  tcp: { cpuRatio: 1.3, throughputRatio: 0.9 },
  /** VmRSS per sidecar idle after traffic, MB: Envoy's ~50 MB per pod is what users complain of. */
  rssIdleMb: 50,
  rssLoadMb: 80,
} as const;

export const SOURCES = {
  h1: {
    cpuRatio: 'issue 14',
    throughputRatio: 'issue 14',
    p50OverMs: 'issue 5',
    rateCpuPerSidecarUs: 'issue 14',
    p99Ratio: 'issue 14',
  },
  tcp: { cpuRatio: 'issue 14', throughputRatio: 'issue 14' },
  rssIdleMb: 'issue 14',
  rssLoadMb: 'issue 14',
} as const;

/**
 * Istio's published cost of its Envoy sidecar: 0.20 vCPU per 1,000 req/s, i.e. 200 µs per request
 * per sidecar, with mTLS and telemetry. The reference line for CPU per request at 1,000 req/s.
 */
export const ISTIO_SIDECAR_US_PER_REQUEST = 200;
export const ISTIO_REFERENCE = `Istio's Envoy sidecar: ${ISTIO_SIDECAR_US_PER_REQUEST} µs/request per sidecar (published, 0.20 vCPU per 1,000 req/s, mTLS and telemetry)`;

/** The two sides of a pair, by the sidecar the app's request meets first. */
export const SIDES = ['client', 'server'] as const;
export type Side = (typeof SIDES)[number];
export const SIDE_LABEL: Record<Side, string> = {
  client: 'client sidecar (outbound)',
  server: 'server sidecar (inbound)',
};

/**
 * A pair's processes split by side. Convention of bench:proxy's pair pid lists: the client side's
 * processes first, then the server side's, as many on each side (one for Node and HAProxy; a proxy
 * with a master and workers lists both of each side).
 */
export function sidesOf(pids: readonly number[]): Record<Side, readonly number[]> {
  const half = pids.length / 2;
  return { client: pids.slice(0, half), server: pids.slice(half) };
}
