// What the Workload API reports about itself, for metrics: declared here, beside its users (server.ts,
// handler.ts), so the endpoint knows nothing of prom-client. Labels are bounded by construction: RPC
// names from the service definition, gRPC status names, and the fixed refusal reasons below.

/** Why a connection was refused before any call: unreadable peer credentials, or a connection cap. */
export type ConnectionRefusal = 'peer-credentials' | 'uid-cap' | 'total-cap';

export interface WorkloadApiObserver {
  streamOpened(rpc: string): void;
  streamClosed(rpc: string): void;
  /** A call ended; `code` is the gRPC status name (OK, PERMISSION_DENIED, CANCELLED…). */
  callEnded(rpc: string, code: string): void;
  connectionRefused(reason: ConnectionRefusal): void;
}

export const NO_WORKLOAD_API_OBSERVER: WorkloadApiObserver = {
  streamOpened: () => {},
  streamClosed: () => {},
  callEnded: () => {},
  connectionRefused: () => {},
};
