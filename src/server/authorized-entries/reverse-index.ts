// The index's reverse maps: from an entry to the agents holding it, from an ID to the agents that
// reach it (entries parented to that ID are theirs), and from a selector to the agents attested with
// it. They are what lets a write find the affected agents without looking at the others.

import type { ReachTracker } from './agent-view.js';
import { addTo, removeFrom } from './graph.js';

export class ReverseIndex implements ReachTracker {
  private readonly holders = new Map<string, Set<string>>();
  private readonly reachers = new Map<string, Set<string>>();
  private readonly agentsBySelector = new Map<string, Set<string>>();

  held(agentId: string, entryId: string, isHeld: boolean): void {
    if (isHeld) addTo(this.holders, entryId, agentId);
    else removeFrom(this.holders, entryId, agentId);
  }

  reached(agentId: string, id: string, isReached: boolean): void {
    if (isReached) addTo(this.reachers, id, agentId);
    else removeFrom(this.reachers, id, agentId);
  }

  /** A copy: applying changes to the agents updates these maps while the caller iterates. */
  holdersOf(entryId: string): string[] {
    return [...(this.holders.get(entryId) ?? [])];
  }

  reachersOf(id: string): string[] {
    return [...(this.reachers.get(id) ?? [])];
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
