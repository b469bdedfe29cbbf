// Metrics of the route table at work, as cells (metric-cells.ts) resolved once per rule and backend
// when a table is loaded, and per shadow service: labels come from the operator's route and config
// files (rule names, service names) and fixed outcomes, so they stay bounded.
import type { Registry } from 'prom-client';
import { CellCounter, type CountCell } from '../metric-cells.js';

export type MirrorOutcome = 'sent' | 'dropped' | 'too-large';

export interface RouteMetrics {
  /** Requests a rule took to `backend` (a service name, or `(redirect)` / `(none)` for the proxy's own answers). */
  routed(route: string, backend: string): CountCell;
  /** Copies for shadow `service`: sent, dropped (too many in flight, or no such service), too-large (body). */
  mirror(service: string, outcome: MirrorOutcome): CountCell;
}

export function createRouteMetrics(registry: Registry): RouteMetrics {
  const routed = new CellCounter(registry, {
    name: 'sigil_proxy_route_requests_total',
    help: 'Requests taken by each route rule, by backend service ((redirect) and (none) for answers the proxy made itself)',
    labelNames: ['route', 'backend'],
  });
  const mirrored = new CellCounter(registry, {
    name: 'sigil_proxy_mirror_requests_total',
    help: 'Request copies for shadow services (RequestMirror): sent, dropped (too many in flight or no such service) or too-large (body over 64 KiB or of unknown length)',
    labelNames: ['service', 'outcome'],
  });
  return {
    routed: (route, backend) => routed.cell([route, backend]),
    mirror: (service, outcome) => mirrored.cell([service, outcome]),
  };
}
