// Metrics of upstream services and their endpoints, as cells (metric-cells.ts): resolved once per
// service or endpoint and bumped on the hot path. Labels are the service name, the endpoint address
// (at most 256 per service, config-checked) and fixed reasons.
import { Gauge, type Registry } from 'prom-client';
import { CellCounter, CellHistogram, type CountCell, type HistogramCell } from '../metric-cells.js';

const TRY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export interface EndpointCells {
  readonly picks: CountCell;
  readonly tryLatency: HistogramCell;
}

export interface ServiceCells {
  readonly requests: CountCell;
  readonly requestLatency: HistogramCell;
  readonly budgetExhausted: CountCell;
  readonly circuitOpened: CountCell;
  /** Pipelined requests a stall sent again on another connection (pipelining.ts). */
  readonly pipelineMoved: CountCell;
  retries(reason: string): CountCell;
  limitHit(limit: string): CountCell;
  ejection(endpoint: string, reason: string): CountCell;
  returned(endpoint: string): CountCell;
  endpoint(endpoint: string): EndpointCells;
}

/** Endpoint states for the gauge, read at scrape time. */
export interface EndpointStates {
  forEachEndpoint(
    visit: (service: string, endpoint: string, state: 'healthy' | 'ejected' | 'probing') => void,
  ): void;
}

export interface ServiceMetrics {
  service(name: string): ServiceCells;
  /** Where the endpoint-state gauge reads from when scraped. */
  watchStates(states: EndpointStates): void;
}

const STATE_VALUE = { healthy: 0, probing: 1, ejected: 2 } as const;

export function createServiceMetrics(registry: Registry): ServiceMetrics {
  const requests = counter(
    registry,
    'sigil_proxy_upstream_requests_total',
    'Requests sent to an upstream service, retries not counted',
    ['service'],
  );
  const retries = counter(
    registry,
    'sigil_proxy_upstream_retries_total',
    'Retries of requests to an upstream service, by reason (connect, identity, reset, timeout, status-NNN)',
    ['service', 'reason'],
  );
  const budget = counter(
    registry,
    'sigil_proxy_upstream_retry_budget_exhausted_total',
    'Retries refused because the service’s retry budget was empty',
    ['service'],
  );
  const limits = counter(
    registry,
    'sigil_proxy_upstream_limit_hits_total',
    'Requests and connections refused with 503 overloaded, by limit (concurrent, pending, connections)',
    ['service', 'limit'],
  );
  const ejections = counter(
    registry,
    'sigil_proxy_upstream_ejections_total',
    'Endpoints ejected by outlier detection, by reason (consecutive, rate, probe)',
    ['service', 'endpoint', 'reason'],
  );
  const returns = counter(
    registry,
    'sigil_proxy_upstream_returns_total',
    'Ejected endpoints returned after a successful probe',
    ['service', 'endpoint'],
  );
  const circuit = counter(
    registry,
    'sigil_proxy_upstream_circuit_opened_total',
    'Times the service’s circuit breaker opened (its failure rate over the window), probes that failed included',
    ['service'],
  );
  const moved = counter(
    registry,
    'sigil_proxy_upstream_pipelining_moved_total',
    'Pipelined requests sent again on another connection because the request ahead of them stalled (they reach the app twice)',
    ['service'],
  );
  const picks = counter(
    registry,
    'sigil_proxy_upstream_balancer_picks_total',
    'Tries (and opaque connections) sent to each endpoint by the balancer',
    ['service', 'endpoint'],
  );
  const tries = new CellHistogram(registry, {
    name: 'sigil_proxy_upstream_try_duration_seconds',
    help: 'Time from sending one try to its response head (or failure), per endpoint',
    labelNames: ['service', 'endpoint'],
    buckets: TRY_BUCKETS_S,
  });
  const requestLatency = new CellHistogram(registry, {
    name: 'sigil_proxy_upstream_request_duration_seconds',
    help: 'Time for a whole request to an upstream service, every try and backoff included, until the response completes',
    labelNames: ['service'],
    buckets: TRY_BUCKETS_S,
  });
  let states: EndpointStates | null = null;
  new Gauge({
    name: 'sigil_proxy_upstream_endpoint_state',
    help: 'Outlier state of each endpoint: 0 healthy, 1 probing (half-open), 2 ejected (circuit open)',
    labelNames: ['service', 'endpoint'],
    registers: [registry],
    collect() {
      this.reset();
      states?.forEachEndpoint((service, endpoint, state) =>
        this.set({ service, endpoint }, STATE_VALUE[state]),
      );
    },
  });
  const byName = new Map<string, ServiceCells>();
  return {
    watchStates(source) {
      states = source;
    },
    service(name) {
      let cells = byName.get(name);
      if (cells !== undefined) return cells;
      const endpoints = new Map<string, EndpointCells>();
      cells = {
        requests: requests.cell([name]),
        requestLatency: requestLatency.cell([name]),
        budgetExhausted: budget.cell([name]),
        circuitOpened: circuit.cell([name]),
        pipelineMoved: moved.cell([name]),
        retries: (reason) => retries.cell([name, reason]),
        limitHit: (limit) => limits.cell([name, limit]),
        ejection: (endpoint, reason) => ejections.cell([name, endpoint, reason]),
        returned: (endpoint) => returns.cell([name, endpoint]),
        endpoint(endpoint) {
          let found = endpoints.get(endpoint);
          if (found === undefined) {
            found = { picks: picks.cell([name, endpoint]), tryLatency: tries.cell([name, endpoint]) };
            endpoints.set(endpoint, found);
          }
          return found;
        },
      };
      byName.set(name, cells);
      return cells;
    },
  };
}

function counter(registry: Registry, name: string, help: string, labelNames: readonly string[]): CellCounter {
  return new CellCounter(registry, { name, help, labelNames });
}
