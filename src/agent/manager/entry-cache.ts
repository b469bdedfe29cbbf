// The registration entries this agent is authorized for, as the server's sync stream last described
// them, with a selector index so matching a workload touches only entries sharing a selector with it.
// It stores and classifies changes; it does not mint or notify (manager.ts does).
import { formatSelector, type Selector } from '../../spiffe/selector.js';
import { svidFieldsKey } from './renewal.js';
import type { AgentEntry, SyncUpdate } from './types.js';

/** What one sync update changed, by entry id. */
export interface EntryChanges {
  readonly removed: readonly string[];
  /** New entries, and entries whose SVID-relevant fields changed: both need a (new) SVID. */
  readonly needSvid: readonly string[];
  /** True when anything at all changed (metadata included), so workloads' views must be recomputed. */
  readonly any: boolean;
}

export interface NearMatch {
  readonly entry: AgentEntry;
  readonly missing: readonly Selector[];
}

interface Indexed {
  readonly entry: AgentEntry;
  readonly selectorKeys: readonly string[];
}

export class EntryCache {
  private readonly byId = new Map<string, Indexed>();
  private readonly bySelector = new Map<string, Set<string>>();
  private lastRevision = 0;

  get revision(): number {
    return this.lastRevision;
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: string): AgentEntry | undefined {
    return this.byId.get(id)?.entry;
  }

  /** In insertion order; cheap, for the manager's scans. */
  *values(): IterableIterator<AgentEntry> {
    for (const item of this.byId.values()) yield item.entry;
  }

  /** Sorted by entry id. */
  all(): AgentEntry[] {
    return sortById([...this.values()]);
  }

  /** A snapshot replaces everything; a delta upserts, then deletes. */
  apply(update: SyncUpdate): EntryChanges {
    const removed: string[] = [];
    const needSvid: string[] = [];
    let any = false;
    if (update.snapshot) {
      const keep = new Set(update.upserted.map((e) => e.id));
      for (const id of [...this.byId.keys()]) {
        if (!keep.has(id)) removed.push(id);
      }
    }
    for (const incoming of update.upserted) {
      const entry = Object.freeze({ ...incoming });
      const previous = this.byId.get(entry.id)?.entry;
      if (previous === undefined || svidFieldsKey(previous) !== svidFieldsKey(entry)) needSvid.push(entry.id);
      if (previous === undefined || !sameEntry(previous, entry)) any = true;
      this.put(entry);
    }
    if (!update.snapshot) {
      for (const id of update.deletedIds) if (this.byId.has(id)) removed.push(id);
    }
    for (const id of removed) this.remove(id);
    this.lastRevision = update.revision;
    return { removed, needSvid, any: any || removed.length > 0 };
  }

  /**
   * Entries whose selectors are all among the workload's (SPIRE's subset rule), sorted by entry id.
   * An entry without selectors matches nobody: it could only match everyone, which no registration means.
   */
  matching(selectors: readonly Selector[]): AgentEntry[] {
    const matched: AgentEntry[] = [];
    for (const [item, hits] of this.hitCounts(selectors)) {
      if (hits === item.selectorKeys.length) matched.push(item.entry);
    }
    return sortById(matched);
  }

  /** Entries sharing at least one selector with the workload but lacking some, with what is missing. */
  nearMatches(selectors: readonly Selector[]): NearMatch[] {
    const have = new Set(selectors.map(formatSelector));
    const near: NearMatch[] = [];
    for (const [item, hits] of this.hitCounts(selectors)) {
      if (hits === item.selectorKeys.length) continue;
      const missing = item.entry.selectors.filter((s) => !have.has(formatSelector(s)));
      near.push(Object.freeze({ entry: item.entry, missing: Object.freeze(missing) }));
    }
    return near.sort((a, b) => compareIds(a.entry.id, b.entry.id));
  }

  /** For each entry sharing a selector with the workload, how many of its selectors the workload has. */
  private hitCounts(selectors: readonly Selector[]): Map<Indexed, number> {
    const counts = new Map<Indexed, number>();
    for (const key of new Set(selectors.map(formatSelector))) {
      for (const id of this.bySelector.get(key) ?? []) {
        const item = this.byId.get(id)!;
        counts.set(item, (counts.get(item) ?? 0) + 1);
      }
    }
    return counts;
  }

  private put(entry: AgentEntry): void {
    this.remove(entry.id);
    const selectorKeys = [...new Set(entry.selectors.map(formatSelector))];
    this.byId.set(entry.id, { entry, selectorKeys });
    for (const key of selectorKeys) {
      let ids = this.bySelector.get(key);
      if (ids === undefined) {
        ids = new Set();
        this.bySelector.set(key, ids);
      }
      ids.add(entry.id);
    }
  }

  private remove(id: string): void {
    const item = this.byId.get(id);
    if (item === undefined) return;
    this.byId.delete(id);
    for (const key of item.selectorKeys) {
      const ids = this.bySelector.get(key)!;
      ids.delete(id);
      if (ids.size === 0) this.bySelector.delete(key);
    }
  }
}

/** SPIRE's order for a workload's identities (agent cache `sortIdentities`): by entry id, bytewise. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortById(entries: AgentEntry[]): AgentEntry[] {
  return entries.sort((a, b) => compareIds(a.id, b.id));
}

function sameEntry(a: AgentEntry, b: AgentEntry): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
