// A workload's complete identity from the entries it matches: the SVIDs that exist and have not
// expired (entry id order), the own bundle, and the federated bundles those entries federate with.
// Values are frozen and built from shared parts, so WatchHub can compare them by reference.
import type { TrustBundle } from '../../spiffe/bundle.js';
import type { WorkloadIdentity, WorkloadX509Svid } from '../workloadapi/identity-feed.js';
import { type BundleState, frozenMap } from './bundle-state.js';
import { isExpired, type SvidCache } from './svid-cache.js';
import type { AgentEntry } from './types.js';
import type { GroupState } from './watch-hub.js';

const NO_BUNDLES: ReadonlyMap<string, TrustBundle> = frozenMap([]);

/** `matching` must be sorted by entry id (EntryCache.matching is). */
export function buildGroupState(
  matching: readonly AgentEntry[],
  svids: SvidCache,
  failures: ReadonlyMap<string, unknown>,
  bundles: BundleState,
  nowMs: number,
): GroupState {
  const x509Svids: WorkloadX509Svid[] = [];
  const federatesWith: string[] = [];
  let pending = false;
  for (const entry of matching) {
    federatesWith.push(...entry.federatesWith);
    const svid = svids.get(entry.id);
    // An expired SVID is never handed out, even in the moment before the manager drops it.
    if (svid !== undefined && !isExpired(svid, nowMs)) x509Svids.push(svids.viewWithHint(svid, entry.hint));
    // A failed entry does not hold the others back: the workload gets what exists, the rest follows.
    else if (!failures.has(entry.id)) pending = true;
  }
  const identity: WorkloadIdentity = Object.freeze({
    svids: Object.freeze(x509Svids),
    bundle: bundles.bundle,
    // Federated bundles go only to workloads with an identity, as SPIRE does.
    federatedBundles: x509Svids.length > 0 ? bundles.federatedFor(federatesWith) : NO_BUNDLES,
  });
  return { identity, pending, entryIds: matching.map((e) => e.id) };
}
