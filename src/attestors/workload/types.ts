// Workload attestation: from the kernel's view of a calling process to selectors. Nothing here
// trusts what the client sends; the caller's identity comes from the socket's peer credentials.
import type { Selector } from '../../spiffe/selector.js';
import type { ExecutableIdentity, ExecutableUnknown } from './executable.js';

/** Peer credentials of a Unix socket connection, as the kernel reported them (SO_PEERCRED). */
export interface PeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /**
   * The executable the process ran when it connected, recorded by the Workload API at accept.
   * Attestors describing the executable must describe this one and refuse if the process has
   * exec'd since; an ExecutableUnknown means it could not be read then, so it cannot be vouched
   * for now. Absent when there is no connection (an operator's `debug explain --pid`).
   */
  readonly exe?: ExecutableIdentity | ExecutableUnknown;
}

export interface WorkloadAttestor {
  readonly name: string;
  /** Selectors of the calling process; `type` of each is the attestor name. */
  attest(peer: PeerCred, signal: AbortSignal): Promise<Selector[]>;
}
