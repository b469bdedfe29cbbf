// The request and connection pipelines: the layer shape, cancellation and per-upstream state. The
// layers themselves (timeout, retry, breaker, …) and their order (outbound/router.ts) build on
// these; what the proxy answers itself is a ProxyError (../errors.ts).
export type {
  BodySink,
  ConnectLayer,
  Connector,
  Handler,
  Layer,
  ProxyRequest,
  ProxyResponse,
  ResponseBody,
  UpstreamSocket,
} from './layer.js';
export { compose } from './layer.js';
export type { RequestSignal } from './request-signal.js';
export { RequestAbort } from './request-signal.js';
export type { UpstreamState } from './upstream-state.js';
export { UpstreamStates } from './upstream-state.js';
