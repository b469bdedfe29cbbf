// Workload attestation: from the kernel's view of a calling process to selectors. Nothing here
// trusts what the client sends; the caller's identity comes from the socket's peer credentials.
import type { Selector } from '../../spiffe/selector.js';

/** Peer credentials of a Unix socket connection, as the kernel reported them (SO_PEERCRED). */
export interface PeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export interface WorkloadAttestor {
  readonly name: string;
  /** Selectors of the calling process; `type` of each is the attestor name. */
  attest(peer: PeerCred, signal: AbortSignal): Promise<Selector[]>;
}
