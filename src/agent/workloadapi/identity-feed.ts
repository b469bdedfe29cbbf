// What the Workload API handler needs from the rest of the agent, declared beside its consumer so the
// handler can be tested with a small fake and never learns the agent's internals.
import type { KeyObject } from 'node:crypto';
import type { PeerCred } from '../../attestors/workload/types.js';
import type { TrustBundle } from '../../spiffe/bundle.js';
import type { Selector } from '../../spiffe/selector.js';

export interface WorkloadX509Svid {
  readonly spiffeId: string;
  /** DER certificates, leaf first. */
  readonly chain: readonly Buffer[];
  readonly key: KeyObject;
  readonly hint: string;
  readonly expiresAtMs: number;
}

/** The complete identity state of one workload at one moment (every message is complete). */
export interface WorkloadIdentity {
  /** Ordered: the first is the default identity. Empty means "no identity" (PermissionDenied). */
  readonly svids: readonly WorkloadX509Svid[];
  /** Own trust domain's bundle. */
  readonly bundle: TrustBundle;
  /** Federated bundles the workload's entries federate with, by trust domain name. */
  readonly federatedBundles: ReadonlyMap<string, TrustBundle>;
}

export interface WorkloadJwtSvid {
  readonly spiffeId: string;
  readonly token: string;
  readonly hint: string;
}

export interface IdentityFeed {
  /**
   * Yields the workload's identity now and again whenever it changes (SVID rotated, entry added or
   * removed, bundle changed), until `signal` aborts. Values are frozen and shared between readers.
   */
  watch(selectors: readonly Selector[], signal: AbortSignal): AsyncIterable<WorkloadIdentity>;
  /** JWT-SVIDs for the workload's identities (or only `spiffeId`), minted or from cache. */
  fetchJwtSvids(
    selectors: readonly Selector[],
    audience: readonly string[],
    spiffeId?: string,
  ): Promise<WorkloadJwtSvid[]>;
  /** All bundles known to the agent (own + federated) by trust domain name, for ValidateJWTSVID. */
  bundles(): ReadonlyMap<string, TrustBundle>;
}

export interface CallerAttestor {
  attest(peer: PeerCred, signal: AbortSignal): Promise<Selector[]>;
}
