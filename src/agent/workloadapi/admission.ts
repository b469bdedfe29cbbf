// What every Workload API call passes before it is answered, in SPIRE's order: the security header,
// a request that parses, then attestation of the caller from the kernel's view of it. Attestation
// runs on every call, never cached per connection, and is bracketed by a check that the process
// behind the connection is still the one that connected: alive (its pid not reused) and running the
// executable it connected with. Without the second half, a process could connect, fork, exec the
// binary an entry names and let its child use the inherited connection (issue 9, item 3). Streams
// repeat the check before every update they push (`checkCaller`).
import type { Metadata } from '@grpc/grpc-js';
import type { PeerCred } from '../../attestors/workload/types.js';
import { SECURITY_HEADER, SECURITY_HEADER_VALUE } from '../../sdk/index.js';
import { isSigilError, SigilError } from '../../spiffe/errors.js';
import type { Selector } from '../../spiffe/selector.js';
import type { CallerAttestor } from './identity-feed.js';
import type { PeerChange } from './peer-cred.js';
import { MalformedRequest } from './request-decoding.js';

/** The process behind a call's connection, as the server recorded it at accept. */
export interface CallerProcess {
  /** Kernel credentials and the executable recorded at accept. */
  readonly cred: PeerCred;
  /** Undefined while the process that connected is alive and runs the same executable; else what changed. */
  change(): PeerChange | undefined;
  /** Marks a call open on the connection (it is not idle) until the returned function is called. */
  openCall(): () => void;
}

/** A call admitted: who made it, and what attestation said about it. */
export interface Caller {
  readonly process: CallerProcess;
  readonly selectors: readonly Selector[];
}

interface AdmittableCall {
  readonly metadata: Metadata;
  readonly request?: unknown;
}

/**
 * Header, request, caller check, attestation, caller check again. Throws the refusal as a
 * SigilError: ERR_INPUT_INVALID, ERR_PERMISSION_DENIED (exec'd) or ERR_UNAVAILABLE.
 */
export async function admit(
  call: AdmittableCall,
  peer: CallerProcess | undefined,
  attestor: CallerAttestor,
  signal: AbortSignal,
): Promise<Caller> {
  checkSecurityHeader(call.metadata);
  if (call.request instanceof MalformedRequest) throw call.request.error;
  if (!peer) {
    throw new SigilError('ERR_UNAVAILABLE', 'workload attestation failed', { reason: 'caller unknown' });
  }
  checkCaller(peer);
  let selectors: Selector[];
  try {
    selectors = await attestor.attest(peer.cred, signal);
  } catch (err) {
    throw new SigilError('ERR_UNAVAILABLE', 'workload attestation failed', {
      reason: `attestor: ${isSigilError(err) || err instanceof Error ? err.message : String(err)}`,
      cause: err,
    });
  }
  // Attestation read /proc/<pid>: only if that pid still names the process that connected, running
  // what it connected with, do the selectors describe the caller (SPIRE peertracker's rule, plus exec).
  checkCaller(peer);
  return { process: peer, selectors };
}

/** Throws unless the process behind the connection is still the one that connected. */
export function checkCaller(peer: CallerProcess): void {
  const change = peer.change();
  if (change === undefined) return;
  if (change.kind === 'exec') {
    throw new SigilError(
      'ERR_PERMISSION_DENIED',
      "the process that opened this connection has exec'd another program since; connections cannot be handed on",
      { reason: change.detail },
    );
  }
  throw new SigilError('ERR_UNAVAILABLE', 'workload attestation failed', { reason: change.detail });
}

/** Exactly one value, exactly "true" (SPIRE's rule); anything else is a request we must not serve. */
export function checkSecurityHeader(metadata: Metadata): void {
  const values = metadata.get(SECURITY_HEADER);
  if (values.length !== 1 || values[0] !== SECURITY_HEADER_VALUE) {
    throw new SigilError('ERR_INPUT_INVALID', 'security header missing from request', {
      reason: 'security header',
    });
  }
}
