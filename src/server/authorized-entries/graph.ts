// The registration entries as a graph the index can walk without scanning: children by parentId,
// and node entries (parentId = the server's ID) by each of their selectors. It knows nothing about
// agents; the agent views ask it "who are the children of X" and "which node entries does this
// selector set satisfy".

import { formatSelector, type Selector } from '../../spiffe/selector.js';
import type { RegistrationEntry } from '../datastore/index.js';

const NO_CHILDREN: ReadonlyMap<string, RegistrationEntry> = new Map();

export class EntryGraph {
  private readonly entries = new Map<string, RegistrationEntry>();
  private readonly childrenByParent = new Map<string, Map<string, RegistrationEntry>>();
  private readonly nodeEntriesBySelector = new Map<string, Set<string>>();

  constructor(readonly serverId: string) {}

  get size(): number {
    return this.entries.size;
  }

  get(id: string): RegistrationEntry | undefined {
    return this.entries.get(id);
  }

  values(): IterableIterator<RegistrationEntry> {
    return this.entries.values();
  }

  isNodeEntry(entry: RegistrationEntry): boolean {
    return entry.parentId === this.serverId;
  }

  /** Entries whose parentId is `parentId`, keyed by entry id. */
  children(parentId: string): ReadonlyMap<string, RegistrationEntry> {
    return this.childrenByParent.get(parentId) ?? NO_CHILDREN;
  }

  /** Adds or replaces; returns the entry it replaced. */
  put(entry: RegistrationEntry): RegistrationEntry | undefined {
    const previous = this.entries.has(entry.id) ? this.remove(entry.id) : undefined;
    this.entries.set(entry.id, entry);
    let siblings = this.childrenByParent.get(entry.parentId);
    if (siblings === undefined) {
      siblings = new Map();
      this.childrenByParent.set(entry.parentId, siblings);
    }
    siblings.set(entry.id, entry);
    if (this.isNodeEntry(entry)) {
      for (const key of selectorKeys(entry.selectors)) addTo(this.nodeEntriesBySelector, key, entry.id);
    }
    return previous;
  }

  /** Removes; returns the entry removed, if there was one. */
  remove(id: string): RegistrationEntry | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    this.entries.delete(id);
    const siblings = this.childrenByParent.get(entry.parentId);
    siblings?.delete(id);
    if (siblings?.size === 0) this.childrenByParent.delete(entry.parentId);
    if (this.isNodeEntry(entry)) {
      for (const key of selectorKeys(entry.selectors)) removeFrom(this.nodeEntriesBySelector, key, entry.id);
    }
    return entry;
  }

  /**
   * Node entries whose selectors are all among `agentSelectorKeys` (the agent's set is a superset of
   * the entry's). Counts hits per candidate over the agent's selectors' posting lists, so the cost is
   * what those selectors index, not the number of node entries.
   */
  nodeEntriesMatching(agentSelectorKeys: ReadonlySet<string>): RegistrationEntry[] {
    const hits = new Map<string, number>();
    for (const key of agentSelectorKeys) {
      for (const id of this.nodeEntriesBySelector.get(key) ?? []) hits.set(id, (hits.get(id) ?? 0) + 1);
    }
    const matched: RegistrationEntry[] = [];
    for (const [id, count] of hits) {
      const entry = this.entries.get(id)!;
      if (count === entry.selectors.length) matched.push(entry);
    }
    return matched;
  }
}

export function selectorKeys(selectors: readonly Selector[]): Set<string> {
  return new Set(selectors.map(formatSelector));
}

export function addTo<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  let set = index.get(key);
  if (set === undefined) {
    set = new Set();
    index.set(key, set);
  }
  set.add(value);
}

export function removeFrom<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}
