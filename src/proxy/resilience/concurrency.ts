// Circuit-breaking limits of one upstream service, Envoy's three: requests in flight
// (`max_concurrent`), requests waiting for a connection (`max_pending`: those in flight beyond the
// connection cap, since each HTTP/1.1 connection carries one request at a time) and connections
// (enforced by the connection budget in outbound/endpoints.ts). A request over a limit gets an
// immediate 503 `overloaded`: never queued without bound.
import { ProxyError } from '../errors.js';
import { type ExchangeHandler, ForwardingHandler, type Layer, type Send } from './exchange.js';

export interface ConcurrencyLimits {
  readonly maxConcurrent: number;
  readonly maxPending: number;
  readonly maxConnections: number;
}

export type LimitName = 'concurrent' | 'pending';

/** Counts one service's requests in flight; kept by the service across reloads. */
export class InFlight {
  count = 0;
}

export function concurrencyLayer(
  limits: ConcurrencyLimits,
  inFlight: InFlight,
  onLimit: (limit: LimitName) => void,
): Layer {
  const maxActive = Math.min(limits.maxConcurrent, limits.maxConnections + limits.maxPending);
  const limit: LimitName =
    limits.maxConcurrent <= limits.maxConnections + limits.maxPending ? 'concurrent' : 'pending';
  return (next: Send): Send =>
    (request, handler) => {
      if (inFlight.count >= maxActive) {
        onLimit(limit);
        handler.onConnect(() => {});
        handler.onError(
          new ProxyError('overloaded', `proxy: ${inFlight.count} requests in flight, the ${limit} limit`),
        );
        return;
      }
      inFlight.count++;
      next(request, new CountedExchange(handler, inFlight));
    };
}

/** Gives its slot back once, however the exchange ends. */
class CountedExchange extends ForwardingHandler {
  private isCounted = true;

  constructor(
    target: ExchangeHandler,
    private readonly inFlight: InFlight,
  ) {
    super(target);
  }

  override onComplete(trailers: string[] | null): void {
    this.release();
    this.target.onComplete(trailers);
  }

  override onError(err: Error): void {
    this.release();
    this.target.onError(err);
  }

  private release(): void {
    if (!this.isCounted) return;
    this.isCounted = false;
    this.inFlight.count--;
  }
}
