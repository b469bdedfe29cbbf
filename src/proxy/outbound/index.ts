// Outbound: the local app's plaintext traffic carried to an upstream sidecar over verified mTLS.
export type { OutboundListener, OutboundOptions } from './listener.js';
export { startOutbound } from './listener.js';
