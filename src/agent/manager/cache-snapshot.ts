// The manager's cache as a PersistedCache (persisted-cache.ts) and back: what svid-store.ts keeps
// between runs. A record restored from disk is rebuilt as a fresh mint would build it (its chain
// already parsed by the decoder), except that its renewal time and the entry fields it was minted
// for come from the file: the renewal jitter is drawn once, at mint, and an SVID minted for an entry
// that has changed since must still be replaced. No I/O, and no decisions about what to mint.
import { type BundleState, sameBundle } from './bundle-state.js';
import type { EntryCache } from './entry-cache.js';
import type { PersistedCache, PersistedSvid } from './persisted-cache.js';
import type { CachedSvid, SvidCache } from './svid-cache.js';
import type { AgentEntry } from './types.js';

/** The parts of the manager's state a snapshot covers. */
export interface CacheParts {
  readonly entryCache: EntryCache;
  readonly svids: SvidCache;
  readonly bundleState: BundleState;
}

/** Entries, bundles and X.509-SVIDs with their keys, as they are now. */
export function snapshotCache(
  agentId: string,
  parts: CacheParts,
  tainted: ReadonlySet<string>,
): PersistedCache {
  return {
    agentId,
    revision: parts.entryCache.revision,
    bundle: parts.bundleState.bundle,
    federatedBundles: parts.bundleState.federatedBundles(),
    taintedAuthorities: [...tainted],
    entries: [...parts.entryCache.values()],
    svids: [...parts.svids.values()].map(toPersistedSvid),
  };
}

/**
 * Loads `cache` into `parts` and returns its tainted authorities. The own bundle is taken only when
 * newer (by sequence) than the one held; SVIDs are kept only for entries the cache still has. Trust
 * is not checked here: the caller re-anchors the restored SVIDs against the bundle it ends up with.
 */
export function restoreCache(parts: CacheParts, cache: PersistedCache): ReadonlySet<string> {
  const { bundleState, entryCache, svids } = parts;
  if (cache.bundle.sequence > bundleState.bundle.sequence && !sameBundle(cache.bundle, bundleState.bundle))
    bundleState.setOwn(cache.bundle);
  bundleState.setFederated(cache.federatedBundles);
  entryCache.apply({ snapshot: true, upserted: cache.entries, deletedIds: [], revision: cache.revision });
  for (const svid of cache.svids) {
    const entry = entryCache.get(svid.entryId);
    if (entry !== undefined) svids.set(fromPersistedSvid(entry, svid));
  }
  return new Set(cache.taintedAuthorities);
}

function toPersistedSvid(svid: CachedSvid): PersistedSvid {
  return {
    entryId: svid.entryId,
    fieldsKey: svid.fieldsKey,
    spiffeId: svid.spiffeId,
    chain: svid.chain,
    key: svid.key,
    renewAtMs: svid.renewAtMs,
    notBeforeMs: svid.notBeforeMs,
    expiresAtMs: svid.expiresAtMs,
    serialHex: svid.serialHex,
    topIssuer: svid.topIssuer,
  };
}

/** The cache record of a persisted SVID for `entry` (its hint, today's); anchored later by reanchor(). */
function fromPersistedSvid(entry: AgentEntry, svid: PersistedSvid): CachedSvid {
  const chain = Object.freeze([...svid.chain]);
  return {
    entryId: svid.entryId,
    fieldsKey: svid.fieldsKey,
    spiffeId: svid.spiffeId,
    chain,
    key: svid.key,
    notBeforeMs: svid.notBeforeMs,
    expiresAtMs: svid.expiresAtMs,
    renewAtMs: svid.renewAtMs,
    serialHex: svid.serialHex,
    topIssuer: svid.topIssuer,
    anchor: undefined,
    view: Object.freeze({
      spiffeId: svid.spiffeId,
      chain,
      key: svid.key,
      hint: entry.hint,
      expiresAtMs: svid.expiresAtMs,
    }),
  };
}
