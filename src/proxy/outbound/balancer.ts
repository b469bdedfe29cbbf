// The innermost stage of a service's stack: picks the endpoint for one try and dispatches it to that
// endpoint's pool, or picks the endpoint of one opaque connection. Power of two choices over a
// peak-EWMA of latency weighted by requests outstanding (Linkerd's default), or round robin; an
// endpoint in its slow-start window looks costlier (or is skipped by round robin) in proportion to
// how new it is; ejected endpoints are out of the choice, and a retry avoids the endpoint of the
// previous try when there is another. It watches each try to feed the EWMA and outlier detection:
// 5xx and failures count against the endpoint, 429 is overload (balancing only), the rest success.
// The same results feed the service's circuit breaker (an outlier detector over the service as one
// whole): while it is open every try is refused with `circuit-open`, and once its time is over a
// single try probes the service (half-open).
import type { Clock } from '../../spiffe/clock.js';
import { ProxyError } from '../errors.js';
import { pickP2C } from '../resilience/balance/p2c.js';
import { RoundRobin } from '../resilience/balance/round-robin.js';
import { shouldSkipWarming, slowStartWeight } from '../resilience/balance/slow-start.js';
import {
  type ExchangeHandler,
  ForwardingHandler,
  type ProxyRequest,
  type Send,
} from '../resilience/exchange.js';
import type { OutlierDetector, TryOutcome } from '../resilience/outlier.js';
import type { Endpoint, EndpointSet } from './endpoints.js';

export interface BalancerOptions {
  readonly policy: 'p2c-ewma' | 'round-robin';
  readonly slowStartMs: number;
  readonly clock: Clock;
  readonly random: () => number;
  readonly endpoints: EndpointSet;
  readonly outlier: OutlierDetector<Endpoint> | null;
  /** The service's circuit breaker, tracking `SERVICE_CIRCUIT` only. */
  readonly circuit: OutlierDetector<typeof SERVICE_CIRCUIT> | null;
  /** Told about each pick and each try's end, for metrics. */
  readonly onPick: (endpoint: Endpoint) => void;
  readonly onTryEnd: (endpoint: Endpoint, outcome: TryOutcome, seconds: number) => void;
}

/** What the service's circuit breaker tracks: the service as one endpoint. */
export const SERVICE_CIRCUIT = Object.freeze({ name: 'service' });

export class Balancer {
  private readonly roundRobin = new RoundRobin();
  private scratch: Endpoint[] = [];

  constructor(private readonly options: BalancerOptions) {}

  /** The terminal Send: one try to one endpoint. */
  readonly send: Send = (request, handler) => {
    const endpoint = this.choose(request.context.lastEndpoint);
    if (endpoint === undefined) {
      handler.onConnect(() => {});
      handler.onError(this.noEndpointError());
      return;
    }
    request.context.lastEndpoint = endpoint;
    endpoint.outstanding++;
    endpoint.dispatcher.dispatch(dispatchOptions(request), new EndpointTry(handler, endpoint, this));
  };

  /**
   * The endpoint for one try or connection, avoiding `previous` when there is another, and told it
   * was chosen (a probe may start); undefined while the circuit is open or none is available.
   */
  choose(previous: unknown): Endpoint | undefined {
    const circuit = this.options.circuit;
    if (circuit !== null && !circuit.isSelectable(SERVICE_CIRCUIT)) return undefined;
    const endpoint = this.pick(previous);
    if (endpoint === undefined) return undefined;
    circuit?.onPick(SERVICE_CIRCUIT);
    this.options.outlier?.onPick(endpoint);
    this.options.onPick(endpoint);
    return endpoint;
  }

  /** What a try or connection to `endpoint` came to, for outlier detection, the circuit and metrics. */
  record(endpoint: Endpoint, outcome: TryOutcome, elapsedMs: number): void {
    this.options.outlier?.onResult(endpoint, outcome);
    this.options.circuit?.onResult(SERVICE_CIRCUIT, outcome);
    this.options.onTryEnd(endpoint, outcome, elapsedMs / 1_000);
  }

  /** A try that ended without a verdict on the endpoint (the caller left): a probe it carried may go again. */
  abandon(endpoint: Endpoint): void {
    this.options.outlier?.onAbandon(endpoint);
    this.options.circuit?.onAbandon(SERVICE_CIRCUIT);
  }

  private pick(previous: unknown): Endpoint | undefined {
    const { endpoints, outlier, slowStartMs, clock, random } = this.options;
    const all = endpoints.list;
    if (this.scratch.length < all.length) this.scratch = new Array(all.length);
    const candidates = this.scratch;
    let count = 0;
    for (const endpoint of all) {
      if (endpoint === previous && all.length > 1) continue;
      if (outlier !== null && !outlier.isSelectable(endpoint)) continue;
      candidates[count++] = endpoint;
    }
    // The previous endpoint is better than none.
    if (count === 0 && previous !== undefined && all.includes(previous as Endpoint)) {
      if (outlier === null || outlier.isSelectable(previous as Endpoint))
        candidates[count++] = previous as Endpoint;
    }
    if (count <= 1) return count === 1 ? candidates[0] : undefined;
    if (this.options.policy === 'round-robin') {
      if (slowStartMs > 0) {
        // A warming endpoint takes its turn with the probability of its weight.
        for (let tries = 0; tries < count; tries++) {
          const endpoint = this.roundRobin.next(candidates, count)!;
          if (!shouldSkipWarming(slowStartWeight(clock.nowMs() - endpoint.addedAtMs, slowStartMs), random)) {
            return endpoint;
          }
        }
      }
      return this.roundRobin.next(candidates, count);
    }
    return pickP2C(candidates, count, this.cost, random);
  }

  /** Opaque connections: the cost of an endpoint is its EWMA over open connections (outstanding). */
  private readonly cost = (endpoint: Endpoint): number => {
    const cost = endpoint.ewma.cost(endpoint.outstanding);
    const { slowStartMs, clock } = this.options;
    return slowStartMs > 0 ? cost / slowStartWeight(clock.nowMs() - endpoint.addedAtMs, slowStartMs) : cost;
  };

  nowMs(): number {
    return this.options.clock.nowMs();
  }

  noEndpointError(): ProxyError {
    if (this.options.endpoints.list.length === 0) {
      return new ProxyError('no-healthy-endpoint', 'proxy: the service has no endpoints');
    }
    return this.options.circuit !== null && !this.options.circuit.isSelectable(SERVICE_CIRCUIT)
      ? new ProxyError('circuit-open', 'proxy: the service’s circuit is open (too many of its tries failed)')
      : new ProxyError('circuit-open', 'proxy: every endpoint of the service is ejected');
  }
}

function dispatchOptions(request: ProxyRequest) {
  return {
    path: request.path,
    method: request.method,
    headers: request.headers,
    // A body-less request must not become a chunked one: undici would send a stream as chunks.
    body: request.body,
  };
}

/** One try to one endpoint: measures it and reports its outcome once. */
class EndpointTry extends ForwardingHandler {
  private readonly startedMs: number;
  private isReported = false;
  private isAbortedByCaller = false;

  constructor(
    target: ExchangeHandler,
    private readonly endpoint: Endpoint,
    private readonly balancer: Balancer,
  ) {
    super(target);
    this.startedMs = balancer.nowMs();
  }

  override onConnect(abort: (err?: Error) => void): void {
    this.target.onConnect((err) => {
      // The caller left or a timeout above fired: not the endpoint's fault unless it was too slow.
      this.isAbortedByCaller = !(err instanceof ProxyError && err.reason === 'timeout');
      abort(err);
    });
  }

  override onHeaders(
    statusCode: number,
    rawHeaders: Buffer[],
    resume: () => void,
    statusText: string,
  ): boolean {
    if (statusCode >= 200) {
      const elapsedMs = this.balancer.nowMs() - this.startedMs;
      this.endpoint.ewma.observe(elapsedMs);
      this.report(statusCode >= 500 ? 'failure' : statusCode === 429 ? 'overload' : 'success', elapsedMs);
    }
    return this.target.onHeaders(statusCode, rawHeaders, resume, statusText);
  }

  override onComplete(trailers: string[] | null): void {
    this.endpoint.outstanding--;
    this.target.onComplete(trailers);
  }

  override onError(err: Error): void {
    this.endpoint.outstanding--;
    // Our own connection cap is not the endpoint's fault either.
    const isOurLimit = err instanceof ProxyError && err.reason === 'overloaded';
    if (!this.isAbortedByCaller && !isOurLimit) {
      const elapsedMs = this.balancer.nowMs() - this.startedMs;
      // A failure costs the endpoint its worst latency so far, so P2C steers away from it too.
      this.endpoint.ewma.observe(Math.max(elapsedMs, this.endpoint.ewma.valueMs));
      this.report('failure', elapsedMs);
    } else if (!this.isReported) {
      this.isReported = true;
      this.balancer.abandon(this.endpoint);
    }
    this.target.onError(err);
  }

  private report(outcome: TryOutcome, elapsedMs: number): void {
    if (this.isReported) return;
    this.isReported = true;
    this.balancer.record(this.endpoint, outcome, elapsedMs);
  }
}
