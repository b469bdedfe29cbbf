// Inbound: mTLS in front of the local app, authorization, identity headers.
export type { AuthorizationDecision, AuthorizationRequest, Authorizer } from './authorize.js';
export type { HostPort, InboundListener, InboundOptions } from './listener.js';
export { startInbound } from './listener.js';
export { PEER_ID_HEADER, XFCC_HEADER } from './peer-headers.js';
