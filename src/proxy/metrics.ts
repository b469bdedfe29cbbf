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

/** One label combination of a counter, bumped in place. */
export interface CountCell {
  value: number;
}

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

/** The class label for a status code. */
export function responseClassOf(statusCode: number): ResponseClass {
  if (statusCode < 200) return '1xx';
  if (statusCode < 300) return '2xx';
  if (statusCode < 400) return '3xx';
  if (statusCode < 500) return '4xx';
  return '5xx';
}

interface MetricShape {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
}

/** Label values joined with a separator that cannot occur in them (NUL is not valid in any label we use). */
function cellKey(values: readonly string[]): string {
  return values.join('\u0000');
}

function labelsOf(names: readonly string[], values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  names.forEach((name, i) => {
    labels[name] = values[i]!;
  });
  return labels;
}

/** A prom-client Counter fed from cells at scrape time; cells never reset, so totals stay monotonic. */
class CellCounter {
  private readonly cells = new Map<string, { labels: Record<string, string>; cell: CountCell }>();

  constructor(
    registry: Registry,
    private readonly shape: MetricShape,
  ) {
    const cells = this.cells;
    new Counter({
      name: shape.name,
      help: shape.help,
      labelNames: shape.labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const { labels, cell } of cells.values()) if (cell.value > 0) this.inc(labels, cell.value);
      },
    });
  }

  cell(values: readonly string[]): CountCell {
    const key = cellKey(values);
    let entry = this.cells.get(key);
    if (entry === undefined) {
      entry = { labels: labelsOf(this.shape.labelNames, values), cell: { value: 0 } };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }
}

class HistogramCell {
  /** Per-bucket (not cumulative) counts; the last slot is above the largest bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

/**
 * A histogram in prom-client's exposition, fed from cells. prom-client's own Histogram cannot be
 * given bucket counts, so this registers an object with the `get()` its Registry reads from every
 * metric (the same shape Histogram.get() returns).
 */
class CellHistogram {
  private readonly cells = new Map<string, { labels: Record<string, string>; cell: HistogramCell }>();

  constructor(
    registry: Registry,
    private readonly shape: MetricShape & { readonly buckets: readonly number[] },
  ) {
    const { name, help } = shape;
    const metric = {
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => ({ name, help, type: 'histogram', aggregator: 'sum', values: this.values() }),
      reset: () => {
        for (const { cell } of this.cells.values()) {
          cell.counts.fill(0);
          cell.sum = 0;
          cell.count = 0;
        }
      },
    };
    registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  cell(values: readonly string[]): HistogramCell {
    const key = cellKey(values);
    let entry = this.cells.get(key);
    if (entry === undefined) {
      entry = {
        labels: labelsOf(this.shape.labelNames, values),
        cell: new HistogramCell(this.shape.buckets),
      };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }

  private values(): Array<{ labels: Record<string, string | number>; value: number; metricName: string }> {
    const { name, buckets } = this.shape;
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const { labels, cell } of this.cells.values()) {
      if (cell.count === 0) continue;
      let cumulative = 0;
      buckets.forEach((bound, i) => {
        cumulative += cell.counts[i]!;
        values.push({ labels: { ...labels, le: bound }, value: cumulative, metricName: `${name}_bucket` });
      });
      values.push({ labels: { ...labels, le: '+Inf' }, value: cell.count, metricName: `${name}_bucket` });
      values.push({ labels, value: cell.sum, metricName: `${name}_sum` });
      values.push({ labels, value: cell.count, metricName: `${name}_count` });
    }
    return values;
  }
}
