// A service's opt-in `pipelining:` section: HTTP/1.1 pipelining on the sidecar-to-sidecar hop
// (outbound/pipelining.ts enforces it). Off unless present, since only a Sigil inbound sidecar (or an
// upstream known to answer pipelined requests in order) should receive it. This file only checks
// and defaults values.
import type { ConfigReader } from '../config-reader.js';

export interface PipeliningConfig {
  /** Requests in flight on one connection at most, the first included: 2 to 16. Required. */
  readonly depth: number;
  /** Pipelined connections per endpoint, 1 to 64; other requests use the endpoint's ordinary pool. Default 4. */
  readonly connections: number;
  /**
   * How long a connection's oldest request may take (response head and body) before the requests
   * queued behind it are sent again on another connection and nothing new is pipelined onto it, in
   * milliseconds. Default 100ms.
   */
  readonly stallMs: number;
}

/** Pipelining deeper than this buys no fewer syscalls and makes a stall cost more requests. */
export const MAX_PIPELINING_DEPTH = 16;
const MAX_CONNECTIONS = 64;
/** Four connections spread 50 concurrent requests to about 12 deep: the prototype's 5 x 10 shape. */
const DEFAULT_CONNECTIONS = 4;
/** About 30 times a sidecar pair's p50 on loopback: a slow request, not a busy moment. */
const DEFAULT_STALL_MS = 100;
const STALL_BOUNDS = { minMs: 10, maxMs: 60_000 };

/** Checks a service's `pipelining` (pushing problems onto `r`); null when absent (off). */
export function checkPipelining(raw: unknown, at: string, r: ConfigReader): PipeliningConfig | null {
  if (raw === undefined) return null;
  const o = r.mapping(raw, at, ['depth', 'connections', 'stall']);
  const isMapping = typeof raw === 'object' && raw !== null && !Array.isArray(raw);
  if (isMapping && o.depth === undefined)
    r.report(`${at}.depth`, `is required: requests in flight per connection, 2 to ${MAX_PIPELINING_DEPTH}`);
  return Object.freeze({
    depth: r.count(o.depth, `${at}.depth`, 2, MAX_PIPELINING_DEPTH, 2),
    connections: r.count(o.connections, `${at}.connections`, 1, MAX_CONNECTIONS, DEFAULT_CONNECTIONS),
    stallMs: r.duration(o.stall, `${at}.stall`, STALL_BOUNDS, DEFAULT_STALL_MS),
  });
}
