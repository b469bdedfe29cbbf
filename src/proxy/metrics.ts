// Proxy metrics on a registry passed in (never prom-client's global one), named
// sigil_proxy_<what>_<unit|total>. Labels stay bounded: SPIFFE IDs, listener names, classes and
// reasons, never paths or request IDs. Listeners only count; they never read metrics back.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type Direction = 'inbound' | 'outbound';
/** Response classes; `error` is a request that got no response from upstream at all. */
export type ResponseClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'error';

export interface ProxyMetrics {
  readonly requests: Counter<'listener' | 'direction' | 'source_id' | 'destination_id' | 'class'>;
  readonly requestSeconds: Histogram<'listener' | 'direction' | 'class'>;
  readonly tcpConnections: Counter<'listener' | 'direction' | 'source_id' | 'destination_id'>;
  readonly tcpConnectionsOpen: Gauge<'listener' | 'direction'>;
  readonly handshakeFailures: Counter<'listener' | 'direction' | 'reason'>;
  readonly authzDecisions: Counter<'listener' | 'rule' | 'result'>;
  readonly plaintextConnections: Counter<'listener' | 'result'>;
}

export function createProxyMetrics(registry: Registry): ProxyMetrics {
  return {
    requests: new Counter({
      name: 'sigil_proxy_requests_total',
      help: 'HTTP requests by listener, direction, source and destination SPIFFE ID and response class',
      labelNames: ['listener', 'direction', 'source_id', 'destination_id', 'class'],
      registers: [registry],
    }),
    requestSeconds: new Histogram({
      name: 'sigil_proxy_request_duration_seconds',
      help: 'HTTP request latency through the proxy, until the response is complete',
      labelNames: ['listener', 'direction', 'class'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    }),
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
    authzDecisions: new Counter({
      name: 'sigil_proxy_authz_decisions_total',
      help: 'Inbound authorization decisions by deciding rule and result (allow, deny)',
      labelNames: ['listener', 'rule', 'result'],
      registers: [registry],
    }),
    plaintextConnections: new Counter({
      name: 'sigil_proxy_plaintext_connections_total',
      help: 'Inbound connections without TLS: accepted (permissive mode) or refused (strict mode)',
      labelNames: ['listener', 'result'],
      registers: [registry],
    }),
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
