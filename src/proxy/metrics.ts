// Proxy metrics on a registry passed in (never prom-client's global one), named
// sigil_proxy_<what>_<unit|total>. Labels stay bounded: SPIFFE IDs, listener names, classes and
// reasons, never paths or request IDs. Listeners only count; they never read metrics back.
//
// Per-request metrics (requests, latency, authorization decisions) do not go through prom-client's
// inc/observe: each call there hashes and validates its label object, about 4 µs, which is more
// than all our other per-request work together. Listeners resolve a label combination once (per
// connection or listener) into a plain cell and bump it; the totals reach prom-client only when
// /metrics is scraped. Per-connection metrics use prom-client directly.
import { Counter, Gauge, type Registry } from 'prom-client';
import { CellCounter, CellHistogram, type CountCell, cellKey } from './metric-cells.js';

export type Direction = 'inbound' | 'outbound';
/** Response classes; `error` is a request that got no response from upstream at all. */
export type ResponseClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'error';

const RESPONSE_CLASSES: readonly ResponseClass[] = ['1xx', '2xx', '3xx', '4xx', '5xx', 'error'];
const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/** The requests of one listener between one source and one destination SPIFFE ID. */
export interface RequestSeries {
  /** Counts one finished request and its latency in seconds. */
  record(responseClass: ResponseClass, seconds: number): void;
}

export type { CountCell };

export interface ProxyMetrics {
  /** The series for these labels; the same object for the same labels, so callers may keep it. */
  requestSeries(
    listener: string,
    direction: Direction,
    sourceId: string,
    destinationId: string,
  ): RequestSeries;
  /** The cell counting authorization decisions of `listener` by deciding rule and result. */
  authzDecisionCell(listener: string, rule: string, result: 'allow' | 'deny'): CountCell;
  /**
   * The cell counting requests and connections of `listener` refused by a rate limit (ratelimit/),
   * by caller and by which limit. Callers cap the distinct `principal` values (ratelimit/enforce.ts).
   */
  rateLimitedCell(listener: string, principal: string, limit: 'total' | 'per_caller' | 'override'): CountCell;
  readonly tcpConnections: Counter<'listener' | 'direction' | 'source_id' | 'destination_id'>;
  readonly tcpConnectionsOpen: Gauge<'listener' | 'direction'>;
  readonly handshakeFailures: Counter<'listener' | 'direction' | 'reason'>;
  readonly plaintextConnections: Counter<'listener' | 'result'>;
  /** Connections and requests refused before reaching the app or upstream (guard.ts names the reasons). */
  readonly refusals: Counter<'listener' | 'reason'>;
  /** Connections and streams closed by one of the listener's timeouts, by which one. */
  readonly timeouts: Counter<'listener' | 'timeout'>;
}

export function createProxyMetrics(registry: Registry): ProxyMetrics {
  const requests = new CellCounter(registry, {
    name: 'sigil_proxy_requests_total',
    help: 'HTTP requests by listener, direction, source and destination SPIFFE ID and response class',
    labelNames: ['listener', 'direction', 'source_id', 'destination_id', 'class'],
  });
  const latency = new CellHistogram(registry, {
    name: 'sigil_proxy_request_duration_seconds',
    help: 'HTTP request latency through the proxy, until the response is complete',
    labelNames: ['listener', 'direction', 'class'],
    buckets: LATENCY_BUCKETS_S,
  });
  const authz = new CellCounter(registry, {
    name: 'sigil_proxy_authz_decisions_total',
    help: 'Inbound authorization decisions by deciding rule and result (allow, deny)',
    labelNames: ['listener', 'rule', 'result'],
  });
  const rateLimited = new CellCounter(registry, {
    name: 'sigil_proxy_rate_limited_total',
    help: 'Inbound requests and connections refused by a rate limit, by caller SPIFFE ID (plaintext; other past 1000 callers) and limit (total, per_caller, override)',
    labelNames: ['listener', 'principal', 'limit'],
  });
  const series = new Map<string, RequestSeries>();
  return {
    requestSeries(listener, direction, sourceId, destinationId) {
      const key = cellKey([listener, direction, sourceId, destinationId]);
      let found = series.get(key);
      if (found === undefined) {
        const counts = RESPONSE_CLASSES.map((c) =>
          requests.cell([listener, direction, sourceId, destinationId, c]),
        );
        const latencies = RESPONSE_CLASSES.map((c) => latency.cell([listener, direction, c]));
        found = {
          record(responseClass, seconds) {
            const at = RESPONSE_CLASSES.indexOf(responseClass);
            counts[at]!.value++;
            latencies[at]!.observe(seconds);
          },
        };
        series.set(key, found);
      }
      return found;
    },
    authzDecisionCell: (listener, rule, result) => authz.cell([listener, rule, result]),
    rateLimitedCell: (listener, principal, limit) => rateLimited.cell([listener, principal, limit]),
    tcpConnections: new Counter({
      name: 'sigil_proxy_tcp_connections_total',
      help: 'Opaque (tcp, http2) connections piped, by source and destination SPIFFE ID',
      labelNames: ['listener', 'direction', 'source_id', 'destination_id'],
      registers: [registry],
    }),
    tcpConnectionsOpen: new Gauge({
      name: 'sigil_proxy_tcp_connections_open',
      help: 'Opaque (tcp, http2) connections currently piped',
      labelNames: ['listener', 'direction'],
      registers: [registry],
    }),
    handshakeFailures: new Counter({
      name: 'sigil_proxy_tls_handshake_failures_total',
      help: 'mTLS connections refused, by reason (no-certificate, expired, no-bundle, no-path, server-id, tls, timeout…)',
      labelNames: ['listener', 'direction', 'reason'],
      registers: [registry],
    }),
    plaintextConnections: new Counter({
      name: 'sigil_proxy_plaintext_connections_total',
      help: 'Inbound connections without TLS: accepted (permissive mode) or refused (strict mode)',
      labelNames: ['listener', 'result'],
      registers: [registry],
    }),
    refusals: new Counter({
      name: 'sigil_proxy_refusals_total',
      help: 'Connections and requests refused before reaching the app or upstream, by reason (max-connections, bad-path, duplicate-host, bad-request, header-too-large)',
      labelNames: ['listener', 'reason'],
      registers: [registry],
    }),
    timeouts: new Counter({
      name: 'sigil_proxy_timeouts_total',
      help: 'Connections and streams closed by a timeout, by which one (header, request, idle, stream-idle, tcp-idle)',
      labelNames: ['listener', 'timeout'],
      registers: [registry],
    }),
  };
}

/**
 * `requestSeries` of one listener and direction, remembering the last (source, destination) pair:
 * a listener's requests almost always repeat it (one app, one upstream; a few calling sidecars),
 * and two string comparisons cost less than joining and hashing four labels per request.
 */
export function seriesMemo(
  metrics: Pick<ProxyMetrics, 'requestSeries'>,
  listener: string,
  direction: Direction,
): (sourceId: string, destinationId: string) => RequestSeries {
  let lastSource: string | undefined;
  let lastDestination: string | undefined;
  let last: RequestSeries | undefined;
  return (sourceId, destinationId) => {
    if (last === undefined || sourceId !== lastSource || destinationId !== lastDestination) {
      last = metrics.requestSeries(listener, direction, sourceId, destinationId);
      lastSource = sourceId;
      lastDestination = destinationId;
    }
    return last;
  };
}

/** The class label for a status code. */
export function responseClassOf(statusCode: number): ResponseClass {
  if (statusCode < 200) return '1xx';
  if (statusCode < 300) return '2xx';
  if (statusCode < 400) return '3xx';
  if (statusCode < 500) return '4xx';
  return '5xx';
}
