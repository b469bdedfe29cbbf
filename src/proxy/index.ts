// The sidecar's traffic core. The composition root (main.ts) builds a ProxyIdentity from an
// X509Source, then starts inbound and outbound listeners with it.
export { proxyErrorResponse, SIGIL_ERROR_HEADER } from './errors.js';
export type { IdentitySource, ProxyIdentityOptions, VerifiedPeer } from './identity.js';
export { ProxyIdentity } from './identity.js';
export type {
  AuthorizationDecision,
  AuthorizationRequest,
  Authorizer,
  HostPort,
  InboundListener,
  InboundOptions,
} from './inbound/index.js';
export { PEER_ID_HEADER, startInbound, XFCC_HEADER } from './inbound/index.js';
export type { ProxyLogger } from './logger.js';
export type { Direction, ProxyMetrics, ResponseClass } from './metrics.js';
export { createProxyMetrics } from './metrics.js';
export type { OutboundListener, OutboundOptions } from './outbound/index.js';
export { startOutbound } from './outbound/index.js';
