// One agent's authorized set: its roots (own ID, attestation aliases, aliases from node entries it
// matches), every entry reachable from them through parentId, and how each was reached. Changes are
// applied in place when they can only add (a new entry, a new alias) and by a walk from the roots
// when something may have become unreachable; either way the cost is this agent's set, never the
// whole graph. Every change is reported to the tracker (the index's reverse maps), the change log
// and the write's delta.

import type { Selector } from '../../spiffe/selector.js';
import type { RegistrationEntry } from '../datastore/index.js';
import { AgentChangeLog, type DeltaBuilder } from './change-log.js';
import { type EntryGraph, selectorKeys } from './graph.js';

export interface Authorization {
  readonly entry: RegistrationEntry;
  /** IDs from a root to the entry's parentId: [agentId], [alias], [alias, parent entry's spiffeId…]. */
  readonly via: readonly string[];
  /** Revision at which the entry (re)entered this agent's set. */
  readonly enteredAt: number;
}

/** Keeps the index's reverse map (who reaches an ID) in step with a view. */
export interface ReachTracker {
  reached(agentId: string, id: string, isReached: boolean): void;
}

/** Everything one write changes in a view, and at which revision. */
export interface ViewChange {
  readonly revision: number;
  readonly tracker: ReachTracker;
  readonly delta: DeltaBuilder;
}

export class AgentView {
  selectors: readonly Selector[] = [];
  selectorKeys: ReadonlySet<string> = new Set();
  attestationAliases: readonly string[] = [];
  /** Alias ID → ids of the node entries granting it (two node entries may share a spiffeId). */
  nodeAliases = new Map<string, string[]>();
  held = new Map<string, Authorization>();
  /** Every ID entries can hang from for this agent (roots, spiffeIds of held entries) → its chain. */
  reached = new Map<string, readonly string[]>();
  readonly log: AgentChangeLog;

  constructor(
    readonly id: string,
    floorRevision: number,
  ) {
    this.log = new AgentChangeLog(floorRevision);
  }

  setSelectors(selectors: readonly Selector[]): void {
    this.selectors = selectors;
    this.selectorKeys = selectorKeys(selectors);
  }

  /** Own ID first, then aliases in a stable order, so a fresh walk gives the shortest chains. */
  roots(): string[] {
    const aliases = new Set([...this.attestationAliases, ...this.nodeAliases.keys()]);
    aliases.delete(this.id);
    return [this.id, ...[...aliases].sort()];
  }

  /** Replaces the node-entry aliases; says which roots appeared and whether any disappeared. */
  setNodeAliases(matched: readonly RegistrationEntry[]): { gained: string[]; lost: boolean } {
    const before = new Set(this.roots());
    this.nodeAliases = new Map();
    for (const entry of matched) {
      const granting = this.nodeAliases.get(entry.spiffeId);
      if (granting === undefined) this.nodeAliases.set(entry.spiffeId, [entry.id]);
      else granting.push(entry.id);
    }
    const after = this.roots();
    return {
      gained: after.filter((id) => !before.has(id)),
      lost: [...before].some((id) => !after.includes(id)),
    };
  }

  /** Re-walks from the roots and applies the difference: the path for anything that may shrink the set. */
  rebuild(graph: EntryGraph, change: ViewChange): void {
    const reached = new Map<string, readonly string[]>();
    const held = new Map<string, Authorization>();
    const frontier: string[] = [];
    for (const root of this.roots()) {
      reached.set(root, [root]);
      frontier.push(root);
    }
    walk(graph, frontier, reached, held, (entry, via) => ({
      entry,
      via,
      enteredAt: this.held.get(entry.id)?.enteredAt ?? change.revision,
    }));
    for (const [id, old] of this.held) {
      if (held.has(id)) continue;
      this.log.left(id, change.revision);
      change.delta.delete(old.entry.id);
    }
    for (const [id, now] of held) {
      const old = this.held.get(id);
      if (old === undefined) {
        this.log.entered(id);
      }
      if (old?.entry !== now.entry) change.delta.upsert(now.entry);
    }
    for (const id of this.reached.keys()) if (!reached.has(id)) change.tracker.reached(this.id, id, false);
    for (const id of reached.keys()) if (!this.reached.has(id)) change.tracker.reached(this.id, id, true);
    this.held = held;
    this.reached = reached;
  }

  /** Adds a root and everything under it; a no-op for an ID already reached. */
  addRoot(graph: EntryGraph, root: string, change: ViewChange): void {
    if (this.reached.has(root)) return;
    this.reach(root, [root], change);
    this.extend(graph, [root], change);
  }

  /** Adds an entry whose parent this agent reaches, and everything newly reachable through it. */
  addEntry(graph: EntryGraph, entry: RegistrationEntry, change: ViewChange): void {
    const via = this.reached.get(entry.parentId);
    if (via === undefined || this.held.has(entry.id)) return;
    this.hold(entry, via, change);
    if (this.reached.has(entry.spiffeId)) return;
    this.reach(entry.spiffeId, [...via, entry.spiffeId], change);
    this.extend(graph, [entry.spiffeId], change);
  }

  /** A held entry changed without changing what it authorizes: same id, new content. */
  replaceEntry(entry: RegistrationEntry, change: ViewChange): void {
    const old = this.held.get(entry.id);
    if (old === undefined) return;
    this.held.set(entry.id, { ...old, entry });
    change.delta.upsert(entry);
  }

  /** Drops everything (eviction): the delta deletes every held entry. */
  clear(change: ViewChange): void {
    for (const id of this.held.keys()) {
      change.delta.delete(id);
    }
    for (const id of this.reached.keys()) change.tracker.reached(this.id, id, false);
    this.held = new Map();
    this.reached = new Map();
  }

  private extend(graph: EntryGraph, frontier: string[], change: ViewChange): void {
    walk(
      graph,
      frontier,
      this.reached,
      this.held,
      (entry, via) => {
        this.log.entered(entry.id);
        change.delta.upsert(entry);
        return { entry, via, enteredAt: change.revision };
      },
      (id) => change.tracker.reached(this.id, id, true),
    );
  }

  private hold(entry: RegistrationEntry, via: readonly string[], change: ViewChange): void {
    this.held.set(entry.id, { entry, via, enteredAt: change.revision });
    this.log.entered(entry.id);
    change.delta.upsert(entry);
  }

  private reach(id: string, via: readonly string[], change: ViewChange): void {
    this.reached.set(id, via);
    change.tracker.reached(this.id, id, true);
  }
}

/**
 * Breadth-first from `frontier` (IDs already in `reached`): holds every child not yet held and
 * reaches its spiffeId once. The reached map is what stops cycles: an ID is expanded only the first
 * time it is reached.
 */
function walk(
  graph: EntryGraph,
  frontier: string[],
  reached: Map<string, readonly string[]>,
  held: Map<string, Authorization>,
  authorize: (entry: RegistrationEntry, via: readonly string[]) => Authorization,
  onReached?: (id: string) => void,
): void {
  for (let i = 0; i < frontier.length; i++) {
    const parent = frontier[i]!;
    const via = reached.get(parent)!;
    for (const child of graph.children(parent).values()) {
      if (held.has(child.id)) continue;
      held.set(child.id, authorize(child, via));
      if (reached.has(child.spiffeId)) continue;
      reached.set(child.spiffeId, [...via, child.spiffeId]);
      onReached?.(child.spiffeId);
      frontier.push(child.spiffeId);
    }
  }
}
