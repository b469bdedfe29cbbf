// Fans workload identities out to Workload API streams. Watchers are grouped by their selector set:
// each distinct set's identity is computed once per change and the same frozen value goes to every
// watcher in the group, so a rotation costs O(distinct sets), not O(streams). A watcher holds only the
// latest value: every message is complete, so a slow reader skips stale states instead of queueing them.
import { formatSelector, type Selector } from '../../spiffe/selector.js';
import type { WorkloadIdentity } from '../workloadapi/identity-feed.js';

/** What the manager computes for one selector set. */
export interface GroupState {
  /** The identity from the SVIDs that exist now. */
  readonly identity: WorkloadIdentity;
  /**
   * Some matching entries have no SVID yet and no failed attempt: a first message waits for them
   * (a workload should not start with half its identities); later messages do not, so a deletion is
   * redacted at once and a new entry's SVID simply follows when minted.
   */
  readonly pending: boolean;
  /** Entries matching the set, minted or not: pinned in the SVID cache while watched. */
  readonly entryIds: readonly string[];
}

export interface WatchHubOptions {
  compute(selectors: readonly Selector[]): GroupState;
  /** A group is waiting for SVIDs that do not exist yet: mint them. */
  onPending(): void;
  /** The last watcher of a group left; its entries were in use until now. */
  onGroupClosed(entryIds: readonly string[]): void;
}

interface Watcher {
  latest: WorkloadIdentity | undefined;
  wake: (() => void) | undefined;
}

interface Group {
  readonly selectors: readonly Selector[];
  readonly watchers: Set<Watcher>;
  current: WorkloadIdentity | undefined;
  entryIds: readonly string[];
}

export class WatchHub {
  private readonly groups = new Map<string, Group>();
  private refreshQueued = false;

  constructor(private readonly options: WatchHubOptions) {}

  get watcherCount(): number {
    let count = 0;
    for (const group of this.groups.values()) count += group.watchers.size;
    return count;
  }

  /** Entry ids some live watcher's selectors match. */
  watchedEntryIds(): Set<string> {
    const ids = new Set<string>();
    for (const group of this.groups.values()) for (const id of group.entryIds) ids.add(id);
    return ids;
  }

  /** Recomputes every group soon; calls in the same tick coalesce into one pass. */
  refresh(): void {
    if (this.refreshQueued) return;
    this.refreshQueued = true;
    queueMicrotask(() => {
      this.refreshQueued = false;
      for (const group of this.groups.values()) this.update(group);
    });
  }

  async *watch(selectors: readonly Selector[], signal: AbortSignal): AsyncGenerator<WorkloadIdentity> {
    if (signal.aborted) return;
    const key = [...new Set(selectors.map(formatSelector))].sort().join('\n');
    let group = this.groups.get(key);
    const watcher: Watcher = { latest: undefined, wake: undefined };
    if (group === undefined) {
      group = {
        selectors: Object.freeze([...selectors]),
        watchers: new Set([watcher]),
        current: undefined,
        entryIds: [],
      };
      this.groups.set(key, group);
      // Computed now, not on the next refresh: the request itself is an update-generating event.
      this.update(group);
    } else {
      group.watchers.add(watcher);
      watcher.latest = group.current;
    }
    const onAbort = () => watcher.wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted) {
        const next = watcher.latest;
        if (next !== undefined) {
          watcher.latest = undefined;
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          watcher.wake = resolve;
        });
        watcher.wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      group.watchers.delete(watcher);
      if (group.watchers.size === 0 && this.groups.get(key) === group) {
        this.groups.delete(key);
        this.options.onGroupClosed(group.entryIds);
      }
    }
  }

  private update(group: Group): void {
    const state = this.options.compute(group.selectors);
    group.entryIds = state.entryIds;
    if (state.pending) {
      this.options.onPending();
      if (group.current === undefined) return;
    }
    if (group.current !== undefined && sameIdentity(group.current, state.identity)) return;
    group.current = state.identity;
    for (const watcher of group.watchers) {
      watcher.latest = state.identity;
      watcher.wake?.();
    }
  }
}

/** Equal by reference of parts: the caches keep one object per SVID view and per bundle version. */
function sameIdentity(a: WorkloadIdentity, b: WorkloadIdentity): boolean {
  if (a.bundle !== b.bundle || a.svids.length !== b.svids.length) return false;
  if (a.federatedBundles.size !== b.federatedBundles.size) return false;
  for (let i = 0; i < a.svids.length; i++) if (a.svids[i] !== b.svids[i]) return false;
  for (const [name, bundle] of a.federatedBundles) if (b.federatedBundles.get(name) !== bundle) return false;
  return true;
}
