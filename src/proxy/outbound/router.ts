// The outbound stacks, in one place: which layers wrap the relay to an upstream and in what order,
// outermost first: route-level layers (whole-request timeout, retry, budget) before endpoint-level
// ones (limits, breaker, balancing), as linkerd2-proxy stacks logical → concrete → endpoint. A stack
// is built once per upstream when its listener starts, never per request. Both lists are empty
// today, so each stack is its terminal itself and the happy path pays nothing for the pipeline.
import type { Clock } from '../../spiffe/clock.js';
import {
  type ConnectLayer,
  type Connector,
  compose,
  type Handler,
  type Layer,
  type UpstreamState,
} from '../resilience/index.js';

/** What a layer is built from: the upstream it serves, its state that outlives rebuilds, and time. */
export interface UpstreamContext {
  readonly name: string;
  readonly state: UpstreamState;
  readonly clock: Clock;
}

type LayerFactory = (upstream: UpstreamContext) => Layer;
type ConnectLayerFactory = (upstream: UpstreamContext) => ConnectLayer;

/** Per-request layers of `http` listeners, outermost first. */
const REQUEST_LAYERS: readonly LayerFactory[] = [];

/** Per-connection layers of `tcp` and `http2` listeners and of HTTP upgrades, outermost first. */
const CONNECT_LAYERS: readonly ConnectLayerFactory[] = [];

/**
 * The request stack of one upstream around `terminal` (the relay). `outer` goes outside all of it,
 * so it sees every request the app sends: a seam for tests, empty in the sidecar.
 */
export function buildRequestStack(
  upstream: UpstreamContext,
  terminal: Handler,
  outer: readonly Layer[] = [],
): Handler {
  const layers = REQUEST_LAYERS.map((build) => build(upstream));
  return compose(outer.length === 0 ? layers : [...outer, ...layers], terminal);
}

/** The connection stack of one upstream around `terminal` (the verified mTLS connect). */
export function buildConnectStack(upstream: UpstreamContext, terminal: Connector): Connector {
  return compose(
    CONNECT_LAYERS.map((build) => build(upstream)),
    terminal,
  );
}
