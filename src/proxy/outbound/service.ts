// One upstream service at run time: its endpoints, the state its layers keep across requests
// (retry budget, requests in flight, outlier detection, latency EWMAs in the endpoints) and its
// request stack. A reload rebuilds the stack from the new config around the same state, so a
// budget spent or an endpoint ejected stays so; state whose options changed starts afresh.
//
// The stack, outermost first (route-level before endpoint-level, as linkerd2-proxy orders them):
//   limits → request timeout/deadline → retry (+ budget, backoff) → try timeout → balancer
//   (service circuit, outlier ejection, P2C or round robin) → endpoint pool
// A layer whose settings make it a no-op is left out, so a service with nothing to do is the
// balancer alone.
import type { Clock } from '../../spiffe/clock.js';
import type { SigilError } from '../../spiffe/errors.js';
import { sameConfig } from '../config-watch.js';
import type { ProxyIdentity } from '../identity.js';
import { concurrencyLayer, InFlight } from '../resilience/concurrency.js';
import { compose, type Layer, type Send } from '../resilience/exchange.js';
import { OutlierDetector } from '../resilience/outlier.js';
import { retryLayer } from '../resilience/retry.js';
import { RetryBudget } from '../resilience/retry-budget.js';
import { requestTimeoutLayer, tryTimeoutLayer } from '../resilience/timeout.js';
import type { RouteOverrides } from '../routes/index.js';
import type { EndpointConfig, ServiceConfig } from '../services/config.js';
import { watchDnsEndpoints } from '../services/dns.js';
import { Balancer, SERVICE_CIRCUIT } from './balancer.js';
import type { ConnectOptions, UpstreamConnection } from './connect.js';
import { ConnectionBudget, type Endpoint, EndpointSet } from './endpoints.js';
import { overridesNothing, withOverrides } from './route-overrides.js';
import type { ServiceCells } from './service-metrics.js';

export interface ServiceDeps {
  readonly identity: ProxyIdentity;
  readonly clock: Clock;
  readonly random: () => number;
  readonly cells: ServiceCells;
  readonly log: ServiceLog;
}

/** What a service reports; the composition root turns these into log lines. */
export interface ServiceLog {
  connectFailed(service: string, endpoint: Endpoint, err: SigilError, presentedId: string | null): void;
  ejected(service: string, endpoint: Endpoint, untilMs: number, reason: string): void;
  returned(service: string, endpoint: Endpoint): void;
  circuitOpened(service: string, untilMs: number): void;
  circuitClosed(service: string): void;
  dnsFailed(service: string, err: SigilError): void;
  endpointsChanged(service: string, endpoints: readonly Endpoint[]): void;
  poolCloseFailed(service: string, err: unknown): void;
  pipelineStalled(service: string, endpoint: Endpoint, moved: number): void;
}

export class UpstreamService {
  /** The request stack; replaced on reload, so callers read it per request. */
  send: Send;
  private config: ServiceConfig;
  private readonly endpoints: EndpointSet;
  private readonly connections: ConnectionBudget;
  private readonly inFlight = new InFlight();
  private budget: RetryBudget;
  private outlier: OutlierDetector<Endpoint> | null;
  private circuit: OutlierDetector<typeof SERVICE_CIRCUIT> | null;
  private balancer: Balancer;
  private stopDns: (() => void) | null = null;
  /** Route rules' stacks by their overrides (table objects, so a reloaded table builds afresh). */
  private ruleStacks = new WeakMap<RouteOverrides, Send>();
  private readonly stopFollowingIdentity: () => void;

  constructor(
    config: ServiceConfig,
    private readonly deps: ServiceDeps,
  ) {
    this.config = config;
    this.connections = new ConnectionBudget(config.limits.maxConnections);
    this.endpoints = new EndpointSet({
      identity: deps.identity,
      clock: deps.clock,
      connectTimeoutMs: () => this.config.timeouts.connectMs,
      ewmaDecayMs: () => this.config.loadBalancer.ewmaDecayMs,
      connections: this.connections,
      pipelining: () => this.config.pipelining,
      onPipelineStall: (endpoint, moved) => {
        deps.cells.pipelineMoved.value += moved;
        deps.log.pipelineStalled(this.name, endpoint, moved);
      },
      onConnectFailure: (endpoint, err, presentedId) =>
        deps.log.connectFailed(this.name, endpoint, err, presentedId),
      onPoolCloseError: (err) => deps.log.poolCloseFailed(this.name, err),
    });
    this.budget = new RetryBudget(config.retries.budget, deps.clock);
    this.outlier = this.makeOutlier(config);
    this.circuit = this.makeCircuit(config);
    this.balancer = this.makeBalancer();
    this.send = this.buildStack(config);
    this.followEndpoints(config);
    // New connections use the current identity; fresh pools retire keep-alive connections made
    // under the old SVID once their requests finish, instead of keeping them while traffic flows.
    this.stopFollowingIdentity = deps.identity.onUpdate(() => this.endpoints.renewPools());
  }

  get name(): string {
    return this.config.name;
  }

  /** The whole-request timeout, 0 for none: the listener sets each request's deadline from it. */
  get requestTimeoutMs(): number {
    return this.config.timeouts.requestMs;
  }

  /** The whole-request timeout a route rule's `timeouts.request` sets, else the service's. */
  requestTimeoutMsFor(overrides: RouteOverrides): number {
    return overrides.timeouts.requestMs ?? this.config.timeouts.requestMs;
  }

  /**
   * The request stack with a route rule's timeouts and retry settings in place of the service's,
   * around the same state (budget, in flight, balancer, outlier detection): built on first use,
   * rebuilt after a reconfigure. A rule that overrides nothing gets the service's own stack.
   */
  stackFor(overrides: RouteOverrides): Send {
    let send = this.ruleStacks.get(overrides);
    if (send === undefined) {
      send = overridesNothing(overrides) ? this.send : this.buildStack(withOverrides(this.config, overrides));
      this.ruleStacks.set(overrides, send);
    }
    return send;
  }

  /** Counts one finished request and its whole duration. */
  recordRequest(seconds: number): void {
    this.deps.cells.requests.value++;
    this.deps.cells.requestLatency.observe(seconds);
  }

  /** Applies a reloaded config; the state stays unless its own options changed. */
  reconfigure(config: ServiceConfig): void {
    const previous = this.config;
    this.config = config;
    this.connections.max = config.limits.maxConnections;
    if (!sameConfig(previous.retries.budget, config.retries.budget))
      this.budget = new RetryBudget(config.retries.budget, this.deps.clock);
    if (!sameConfig(previous.outlierDetection, config.outlierDetection)) {
      this.outlier = this.makeOutlier(config);
      this.circuit = this.makeCircuit(config);
    }
    this.balancer = this.makeBalancer();
    this.send = this.buildStack(config);
    this.ruleStacks = new WeakMap();
    if (!sameConfig(previous.endpoints, config.endpoints) || !sameConfig(previous.dns, config.dns))
      this.followEndpoints(config);
  }

  /**
   * A verified connection for an opaque pipe or an upgrade: balanced like requests (outstanding =
   * open connections), and on a failure once more to another endpoint.
   */
  async connect(options?: ConnectOptions): Promise<UpstreamConnection> {
    let previous: Endpoint | undefined;
    let lastError: unknown;
    const attempts = Math.max(1, Math.min(2, this.endpoints.list.length));
    for (let attempt = 0; attempt < attempts; attempt++) {
      const endpoint = this.balancer.choose(previous);
      if (endpoint === undefined) throw lastError ?? this.balancer.noEndpointError();
      previous = endpoint;
      const startedMs = this.deps.clock.nowMs();
      try {
        const connection = await endpoint.connect(options);
        const elapsedMs = this.deps.clock.nowMs() - startedMs;
        endpoint.ewma.observe(elapsedMs);
        this.balancer.record(endpoint, 'success', elapsedMs);
        endpoint.outstanding++;
        connection.socket.once('close', () => endpoint.outstanding--);
        return connection;
      } catch (err) {
        lastError = err;
        this.balancer.record(endpoint, 'failure', this.deps.clock.nowMs() - startedMs);
      }
    }
    throw lastError;
  }

  /** Services, endpoints and their live state, for /config. */
  describe(): Record<string, unknown> {
    const now = this.deps.clock.nowMs();
    return {
      name: this.name,
      load_balancer: this.config.loadBalancer.policy,
      circuit: this.circuitState(),
      in_flight: this.inFlight.count,
      connections_open: this.connections.open,
      endpoints: this.endpoints.list.map((endpoint) => {
        const state = this.outlier?.stateOf(endpoint) ?? {
          state: 'healthy',
          ejectedUntilMs: null,
          ejections: 0,
        };
        return {
          address: endpoint.label,
          server_ids: endpoint.config.serverIds,
          state: state.state,
          ejected_until: state.ejectedUntilMs === null ? null : new Date(state.ejectedUntilMs).toISOString(),
          ejections: state.ejections,
          outstanding: endpoint.outstanding,
          ewma_ms: Math.round(endpoint.ewma.valueMs * 100) / 100,
          age_ms: now - endpoint.addedAtMs,
        };
      }),
    };
  }

  /** The service's circuit: closed, open until a time, or half-open (its probe out). */
  circuitState(): { state: 'closed' | 'open' | 'half-open'; open_until: string | null; openings: number } {
    const view = this.circuit?.stateOf(SERVICE_CIRCUIT);
    if (view === undefined || view.state === 'healthy')
      return { state: 'closed', open_until: null, openings: view?.ejections ?? 0 };
    return {
      state: view.state === 'probing' ? 'half-open' : 'open',
      open_until: view.ejectedUntilMs === null ? null : new Date(view.ejectedUntilMs).toISOString(),
      openings: view.ejections,
    };
  }

  forEachEndpoint(visit: (endpoint: string, state: 'healthy' | 'ejected' | 'probing') => void): void {
    for (const endpoint of this.endpoints.list)
      visit(endpoint.label, this.outlier?.stateOf(endpoint).state ?? 'healthy');
  }

  async close(): Promise<void> {
    this.stopDns?.();
    this.stopFollowingIdentity();
    await this.endpoints.close();
  }

  private buildStack(config: ServiceConfig): Send {
    const deps = this.deps;
    const cells = deps.cells;
    const layers: Layer[] = [
      concurrencyLayer(config.limits, this.inFlight, (limit) => cells.limitHit(limit).value++),
      requestTimeoutLayer(deps.clock),
    ];
    if (config.retries.maxAttempts > 1) {
      layers.push(
        retryLayer({
          policy: { ...config.retries, onStatuses: new Set(config.retries.onStatuses) },
          budget: this.budget,
          clock: deps.clock,
          random: deps.random,
          events: {
            onRetry: (reason) => cells.retries(reason).value++,
            onBudgetExhausted: () => cells.budgetExhausted.value++,
          },
        }),
      );
    }
    if (config.timeouts.tryMs > 0) layers.push(tryTimeoutLayer(deps.clock, config.timeouts.tryMs));
    return compose(layers, this.balancer.send);
  }

  private makeBalancer(): Balancer {
    const { config, deps } = this;
    return new Balancer({
      policy: config.loadBalancer.policy,
      slowStartMs: config.loadBalancer.slowStartMs,
      clock: deps.clock,
      random: deps.random,
      endpoints: this.endpoints,
      outlier: this.outlier,
      circuit: this.circuit,
      onPick: (endpoint) => endpoint.cells!.picks.value++,
      onTryEnd: (endpoint, _outcome, seconds) => endpoint.cells!.tryLatency.observe(seconds),
    });
  }

  private makeOutlier(config: ServiceConfig): OutlierDetector<Endpoint> | null {
    const options = config.outlierDetection;
    if (options.consecutiveFailures === 0 && options.failureRate === 0) return null;
    const detector = new OutlierDetector<Endpoint>(options, this.deps.clock, {
      onEject: (endpoint, untilMs, reason) => {
        this.deps.cells.ejection(endpoint.label, reason).value++;
        this.deps.log.ejected(this.name, endpoint, untilMs, reason);
      },
      onProbeFailed: (endpoint, untilMs) => {
        this.deps.cells.ejection(endpoint.label, 'probe').value++;
        this.deps.log.ejected(this.name, endpoint, untilMs, 'probe');
      },
      onReturn: (endpoint) => {
        this.deps.cells.returned(endpoint.label).value++;
        this.deps.log.returned(this.name, endpoint);
      },
    });
    detector.setEndpoints(this.endpoints?.list ?? []);
    return detector;
  }

  /**
   * The service's circuit breaker: failure-rate detection over the service as a whole, which may
   * open whatever the number of endpoints (a one-endpoint service too, which outlier detection's
   * share cap never empties). Consecutive failures are left to the endpoints: a streak of five is
   * luck at a 30% failure rate, not a reason to refuse every caller.
   */
  private makeCircuit(config: ServiceConfig): OutlierDetector<typeof SERVICE_CIRCUIT> | null {
    const options = config.outlierDetection;
    if (options.failureRate === 0) return null;
    const circuit = new OutlierDetector<typeof SERVICE_CIRCUIT>(
      { ...options, consecutiveFailures: 0, maxEjectedShare: 1 },
      this.deps.clock,
      {
        onEject: (_service, untilMs) => {
          this.deps.cells.circuitOpened.value++;
          this.deps.log.circuitOpened(this.name, untilMs);
        },
        onProbeFailed: (_service, untilMs) => {
          this.deps.cells.circuitOpened.value++;
          this.deps.log.circuitOpened(this.name, untilMs);
        },
        onReturn: () => this.deps.log.circuitClosed(this.name),
      },
    );
    circuit.setEndpoints([SERVICE_CIRCUIT]);
    return circuit;
  }

  private followEndpoints(config: ServiceConfig): void {
    this.stopDns?.();
    this.stopDns = null;
    if (config.dns === null) {
      this.setEndpoints(config.endpoints ?? []);
      return;
    }
    const watch = watchDnsEndpoints(config.dns, config.serverIds, {
      clock: this.deps.clock,
      onChange: (endpoints) => this.setEndpoints(endpoints),
      onError: (err) => this.deps.log.dnsFailed(this.name, err),
    });
    this.stopDns = () => watch.close();
  }

  private setEndpoints(configs: readonly EndpointConfig[]): void {
    const { added } = this.endpoints.update(configs);
    for (const endpoint of added) endpoint.cells = this.deps.cells.endpoint(endpoint.label);
    this.outlier?.setEndpoints(this.endpoints.list);
    this.deps.log.endpointsChanged(this.name, this.endpoints.list);
  }
}
