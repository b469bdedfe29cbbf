// The index's reverse maps: from an ID to the agents that reach it, and from a selector to the agents
// attested with it. They are what lets a write find the affected agents without looking at the
// others. Who holds an entry needs no map of its own: exactly the agents reaching its parentId.

import type { ReachTracker } from './agent-view.js';
import { addTo, removeFrom } from './graph.js';

export class ReverseIndex implements ReachTracker {
  private readonly reachers = new CompactMultimap();
  private readonly agentsBySelector = new Map<string, Set<string>>();

  reached(agentId: string, id: string, isReached: boolean): void {
    if (isReached) this.reachers.add(id, agentId);
    else this.reachers.remove(id, agentId);
  }

  /** A copy: applying changes to the agents updates this map while the caller iterates. */
  reachersOf(id: string): string[] {
    return this.reachers.get(id);
  }

  agentSelectorsChanged(agentId: string, before: ReadonlySet<string>, after: ReadonlySet<string>): void {
    for (const key of before) if (!after.has(key)) removeFrom(this.agentsBySelector, key, agentId);
    for (const key of after) addTo(this.agentsBySelector, key, agentId);
  }

  /**
   * Agents holding every one of `keys` (their selectors are a superset): walks the shortest posting
   * list and checks the rest against each candidate's own set.
   */
  agentsWithAll(keys: ReadonlySet<string>, selectorsOf: (agentId: string) => ReadonlySet<string>): string[] {
    let shortest: Set<string> | undefined;
    for (const key of keys) {
      const agents = this.agentsBySelector.get(key);
      if (agents === undefined) return [];
      if (shortest === undefined || agents.size < shortest.size) shortest = agents;
    }
    if (shortest === undefined) return [];
    const matched: string[] = [];
    for (const agentId of shortest) {
      const own = selectorsOf(agentId);
      let hasAll = true;
      for (const key of keys) if (!own.has(key)) hasAll = false;
      if (hasAll) matched.push(agentId);
    }
    return matched;
  }
}

/**
 * Key → agent ids, where almost every key has exactly one agent: a lone value is stored as the
 * string itself and becomes a Set only when a second arrives. Saves one Set per entry, which at
 * 100,000 entries is most of the index's load time in allocation and GC.
 */
class CompactMultimap {
  private readonly map = new Map<string, string | Set<string>>();

  add(key: string, value: string): void {
    const current = this.map.get(key);
    if (current === undefined) this.map.set(key, value);
    else if (typeof current === 'string') {
      if (current !== value) this.map.set(key, new Set([current, value]));
    } else current.add(value);
  }

  remove(key: string, value: string): void {
    const current = this.map.get(key);
    if (current === value) this.map.delete(key);
    else if (typeof current === 'object') {
      current.delete(value);
      if (current.size === 1) this.map.set(key, current.values().next().value!);
    }
  }

  /** A copy: callers change the map while iterating over the result. */
  get(key: string): string[] {
    const current = this.map.get(key);
    return current === undefined ? [] : typeof current === 'string' ? [current] : [...current];
  }
}
