// The Workload API's connection and stream limits: defaults, and the total cap the descriptor limit
// allows. Every connection holds two descriptors (the socket and the caller's pidfd); when they run
// out, accept() fails silently inside libuv (the peer sees ECONNRESET), and reading /proc for the
// callers that did get in fails too. So the total cap stays below what RLIMIT_NOFILE leaves after
// a reserve for the agent's own files (data dir, server connection, admin socket, /proc reads,
// hashing), and the agent itself refuses, with the real reason, before the kernel does.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ConnectionLimits } from './connection-table.js';

/** Connections at most, whatever the descriptor limit: each idle HTTP/2 session costs tens of KB. */
const DEFAULT_MAX_CONNECTIONS = 4096;
/**
 * Per uid: far above what one uid's workloads need (an SDK holds one connection), and below the
 * total derived from a 1,024-descriptor limit (384), so other uids keep a reserve while one uid's
 * connections are all busy.
 */
const DEFAULT_MAX_CONNECTIONS_PER_UID = 256;
/**
 * HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; nghttp2 refuses streams beyond it (REFUSED_STREAM). A
 * workload opens a handful (X.509 watch, bundle watches, JWT calls); 5,000 once were all accepted.
 */
const DEFAULT_MAX_STREAMS_PER_CONNECTION = 100;
/** A connection with no call open is closed after this; clients reconnect on their next call. */
const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
/** Descriptors kept for the agent's own use, outside the Workload API's share. */
const DESCRIPTOR_RESERVE = 256;
/** The socket, and the pidfd that guards against pid reuse (SO_PEERPIDFD). */
const DESCRIPTORS_PER_CONNECTION = 2;

export interface WorkloadApiLimits {
  /** Upper bound on connections; the descriptor limit may lower it. */
  readonly maxConnections: number;
  readonly maxConnectionsPerUid: number;
  readonly maxStreamsPerConnection: number;
  readonly idleTimeoutMs: number;
}

export const DEFAULT_WORKLOAD_API_LIMITS: WorkloadApiLimits = Object.freeze({
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  maxConnectionsPerUid: DEFAULT_MAX_CONNECTIONS_PER_UID,
  maxStreamsPerConnection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
});

/** What the table enforces, and whether the descriptor limit lowered the configured total. */
export interface EffectiveLimits extends ConnectionLimits {
  readonly descriptorBound: number | undefined;
}

/**
 * The configured limits, with the total lowered to what `openFileLimit` allows and the per-uid cap
 * never above the total. At least one connection is always allowed, so the API stays reachable.
 */
export function effectiveLimits(
  configured: WorkloadApiLimits,
  openFileLimit: number | undefined,
): EffectiveLimits {
  const descriptorBound =
    openFileLimit === undefined
      ? undefined
      : Math.max(1, Math.floor((openFileLimit - DESCRIPTOR_RESERVE) / DESCRIPTORS_PER_CONNECTION));
  const maxConnections = Math.min(configured.maxConnections, descriptorBound ?? Number.POSITIVE_INFINITY);
  return Object.freeze({
    maxConnections,
    maxConnectionsPerUid: Math.min(configured.maxConnectionsPerUid, maxConnections),
    idleTimeoutMs: configured.idleTimeoutMs,
    descriptorBound,
  });
}

/**
 * The soft RLIMIT_NOFILE of this process, from /proc/self/limits (Node raises the soft limit to the
 * hard one at start-up, so the soft one is what is really available), or undefined if unreadable.
 */
export function readOpenFileLimit(procRoot = '/proc'): number | undefined {
  let limits: string;
  try {
    limits = readFileSync(path.join(procRoot, 'self', 'limits'), 'utf8');
  } catch {
    // No /proc (or not Linux): only the configured cap applies.
    return undefined;
  }
  const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
  return soft === undefined ? undefined : Number(soft);
}
