// Connection caps and timeouts of every listener (inbound, outbound, admin): the defaults, why each
// is what it is, and how `limits:` in the config (top level, and per listener on top of it) is read.
// Each listener applies the keys that concern its protocol. Enforcement lives with the listeners
// (guarded-http.ts, the accept path, the pipes and the HTTP/2 relay); this file only decides values.
import { MAX_TIMER_DELAY_MS } from '../spiffe/clock.js';
import { parseDurationMs } from '../spiffe/duration.js';
import { showValue } from './policy/match.js';

export interface ListenerLimits {
  /** Open connections per listener; the next one is closed at once, counted and logged. */
  readonly maxConnections: number;
  /** Inbound: TCP accept to a verified client certificate, in milliseconds. */
  readonly handshakeTimeoutMs: number;
  /** HTTP/1.1: from a connection's (or request's) first byte to the end of its head, in ms. */
  readonly headerTimeoutMs: number;
  /** HTTP/1.1: from a request's first byte to the end of its body, in milliseconds. */
  readonly requestTimeoutMs: number;
  /** HTTP/1.1 keep-alive between requests, and an HTTP/2 relay session with no open stream, in ms. */
  readonly idleTimeoutMs: number;
  /** HTTP/2 relay: a stream with no frame either way for this long is reset, in milliseconds. */
  readonly streamIdleTimeoutMs: number;
  /** HTTP/2 relay: concurrent streams a caller may open on one connection. */
  readonly maxConcurrentStreams: number;
  /** Opaque pipes (tcp, http2, upgraded WebSockets): no byte either way for this long closes both ends, in ms. */
  readonly tcpIdleTimeoutMs: number;
}

/**
 * A sidecar's callers are a few pooled sidecars and its own app, so 1,024 connections per listener
 * is far above normal use; it is Envoy's default cluster `max_connections` circuit breaker, and
 * keeps one flooded listener from taking every descriptor the others need.
 */
const DEFAULT_MAX_CONNECTIONS = 1_024;
/** Envoy's edge guide and Linkerd's protocol detection both give a connection 10s to say who it is. */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Envoy's recommended `request_headers_timeout` (its default is none; Node's 60s let slowloris idle). */
const DEFAULT_HEADER_TIMEOUT_MS = 10_000;
/** Node's own `requestTimeout` default, and Envoy's edge `request_timeout`: 5 minutes for a body. */
const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;
/**
 * Longer than the outbound pool keeps idle upstream connections (30s), so the caller's side, which
 * paid for the mTLS handshake, decides when to close; node:http's 5s made pools re-handshake after
 * every short lull. Envoy's 1h default suits an edge, not a sidecar holding app descriptors.
 */
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Envoy's `stream_idle_timeout` default. */
const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000;
/** Envoy's edge recommendation; Node's default (2^32-1) lets one connection open any number. */
const DEFAULT_MAX_CONCURRENT_STREAMS = 100;
/** Envoy's `tcp_proxy` `idle_timeout` default: pipes carry long-lived protocols (databases, gRPC). */
const DEFAULT_TCP_IDLE_TIMEOUT_MS = 3_600_000;
/** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS is 32 bits; nghttp2 takes up to 2^31-1. */
const MAX_STREAMS = 2_147_483_647;

export const DEFAULT_LIMITS: ListenerLimits = Object.freeze({
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  headerTimeoutMs: DEFAULT_HEADER_TIMEOUT_MS,
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  streamIdleTimeoutMs: DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  maxConcurrentStreams: DEFAULT_MAX_CONCURRENT_STREAMS,
  tcpIdleTimeoutMs: DEFAULT_TCP_IDLE_TIMEOUT_MS,
});

type Kind = 'count' | 'duration';
/** Config key → field and kind; the order is the documentation's. */
const KEYS: Readonly<Record<string, readonly [keyof ListenerLimits, Kind, number]>> = {
  max_connections: ['maxConnections', 'count', Number.MAX_SAFE_INTEGER],
  handshake_timeout: ['handshakeTimeoutMs', 'duration', MAX_TIMER_DELAY_MS],
  header_timeout: ['headerTimeoutMs', 'duration', MAX_TIMER_DELAY_MS],
  request_timeout: ['requestTimeoutMs', 'duration', MAX_TIMER_DELAY_MS],
  idle_timeout: ['idleTimeoutMs', 'duration', MAX_TIMER_DELAY_MS],
  stream_idle_timeout: ['streamIdleTimeoutMs', 'duration', MAX_TIMER_DELAY_MS],
  max_concurrent_streams: ['maxConcurrentStreams', 'count', MAX_STREAMS],
  tcp_idle_timeout: ['tcpIdleTimeoutMs', 'duration', MAX_TIMER_DELAY_MS],
};

/**
 * Reads a `limits:` mapping over `base` (absent: `base` itself). Durations take the usual forms
 * (`10s`, `5m`, a number of seconds); zero is refused, as nothing here may be switched off. Each
 * problem is pushed as `<at>.<key>: …` with the value found.
 */
export function checkLimits(
  raw: unknown,
  at: string,
  base: ListenerLimits,
  problems: string[],
): ListenerLimits {
  if (raw === undefined) return base;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push(`${at}: must be a mapping of ${Object.keys(KEYS).join(', ')} (got ${showValue(raw)})`);
    return base;
  }
  const out: Record<keyof ListenerLimits, number> = { ...base };
  for (const [key, value] of Object.entries(raw)) {
    const known = KEYS[key];
    if (known === undefined) {
      problems.push(`${at}.${key}: unknown key (known keys: ${Object.keys(KEYS).join(', ')})`);
      continue;
    }
    const [field, kind, max] = known;
    const parsed =
      kind === 'count' ? checkCount(value, `${at}.${key}`, max) : checkDuration(value, `${at}.${key}`, max);
    if (typeof parsed === 'string') problems.push(parsed);
    else out[field] = parsed;
  }
  if (out.headerTimeoutMs > out.requestTimeoutMs) {
    problems.push(
      `${at}.header_timeout: must not exceed request_timeout (${out.headerTimeoutMs}ms > ${out.requestTimeoutMs}ms): the head is part of the request`,
    );
  }
  return Object.freeze(out);
}

function checkCount(value: unknown, at: string, max: number): number | string {
  if (Number.isSafeInteger(value) && (value as number) >= 1 && (value as number) <= max)
    return value as number;
  return `${at}: must be a whole number from 1 to ${max} (got ${showValue(value)})`;
}

function checkDuration(value: unknown, at: string, max: number): number | string {
  let ms: number;
  try {
    ms = parseDurationMs(value as string | number, at);
  } catch (err) {
    return (err as Error).message;
  }
  if (ms > max) return `${at}: must be at most ${max}ms, about 24 days (got ${showValue(value)})`;
  return ms;
}
