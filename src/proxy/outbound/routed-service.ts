// What the router and mirroring need of an upstream service (outbound/service.ts), declared beside
// them so their tests use small fakes.
import type { Send } from '../resilience/exchange.js';
import type { RouteOverrides } from '../routes/index.js';

/** What the router needs of a service (UpstreamService). */
export interface RoutedService {
  readonly name: string;
  /** Its own whole-request timeout, 0 for none. */
  readonly requestTimeoutMs: number;
  requestTimeoutMsFor(overrides: RouteOverrides): number;
  /** Its stack with a rule's timeouts and retry in place of its own. */
  stackFor(overrides: RouteOverrides): Send;
  recordRequest(seconds: number): void;
}
