// The server's per-agent index of authorized entries (SPIRE's authorizedentries), kept incrementally:
// each store write updates only the agents it affects, found through the reverse maps, and records
// what changed so a reconnecting agent gets a delta instead of a snapshot. It never re-reads the
// store after load; callers feed it every write in revision order (observe-entry-writes.ts does).
// Entries whose SPIFFE ID lies in Sigil's reserved /sigil namespace (stored before such IDs were
// refused) are kept out entirely: never served to an agent, never an alias, never minted.

import { quote, SigilError } from '../../spiffe/errors.js';
import { canonicalSelectors, type Selector } from '../../spiffe/selector.js';
import { isReservedSpiffeId } from '../../spiffe/sigil-ids.js';
import type { EntryStore, NodeStore, RegistrationEntry } from '../datastore/index.js';
import { AgentView, type ViewChange } from './agent-view.js';
import { byId, DeltaBuilder, type EntryDelta } from './change-log.js';
import { EntryGraph, selectorKeys } from './graph.js';
import { type DeltaListener, DeltaListeners } from './listeners.js';
import { ReverseIndex } from './reverse-index.js';

export interface AgentRecord {
  readonly spiffeId: string;
  readonly selectors: readonly Selector[];
  /** Aliases granted at attestation (a join token's alias ID); node-entry aliases are derived. */
  readonly aliases: readonly string[];
}

/** What load reads: the entries, the nodes, and the revision they reflect. */
export type IndexSource = Pick<EntryStore, 'currentRevision' | 'listEntries'> & Pick<NodeStore, 'listNodes'>;

export type ChangesSince =
  | { readonly kind: 'delta'; readonly delta: EntryDelta }
  | { readonly kind: 'snapshot'; readonly entries: RegistrationEntry[]; readonly revision: number };

export interface AuthorizedEntriesOptions {
  /** How many revisions back an agent can resume with a delta. Defaults to 100,000. */
  readonly changeLogRevisions?: number;
  /**
   * Where a throwing listener's error goes; the listener is unsubscribed (its stream is broken) and
   * the write still completes for everyone else. Defaults to a process warning.
   */
  readonly onListenerError?: (error: unknown, agentId: string) => void;
  /**
   * Told once, at the end of load, of the stored entries with a reserved SPIFFE ID that the index
   * leaves out (the server warns the operator to delete them); not called when there are none.
   */
  readonly onReservedEntriesIgnored?: (entries: readonly RegistrationEntry[]) => void;
}

const DEFAULT_CHANGE_LOG_REVISIONS = 100_000;
/** The store's MAX_PAGE_SIZE: fewest round trips at server start. */
const LOAD_PAGE_SIZE = 1000;

export class AuthorizedEntries {
  private readonly graph: EntryGraph;
  private readonly agents = new Map<string, AgentView>();
  private readonly reverse = new ReverseIndex();
  private readonly listeners: DeltaListeners;
  private readonly changeLogRevisions: number;
  private currentRevision: number;

  private constructor(serverId: string, revision: number, options: AuthorizedEntriesOptions) {
    const window = options.changeLogRevisions ?? DEFAULT_CHANGE_LOG_REVISIONS;
    if (!Number.isSafeInteger(window) || window < 1) {
      throw new SigilError(
        'ERR_CONFIG_INVALID',
        `authorized entries: changeLogRevisions must be a positive integer (got ${quote(window)})`,
        { field: 'changeLogRevisions', reason: 'change-log-revisions' },
      );
    }
    this.graph = new EntryGraph(serverId);
    this.changeLogRevisions = window;
    this.listeners = new DeltaListeners(
      options.onListenerError ??
        ((error) => process.emitWarning(error instanceof Error ? error : String(error))),
    );
    this.currentRevision = revision;
  }

  /** Loads all entries and nodes from the store once, at server start, before writes are accepted. */
  static async load(
    store: IndexSource,
    serverId: string,
    options: AuthorizedEntriesOptions = {},
  ): Promise<AuthorizedEntries> {
    const index = new AuthorizedEntries(serverId, await store.currentRevision(), options);
    const ignored: RegistrationEntry[] = [];
    let pageToken: string | undefined;
    do {
      const page = await store.listEntries({}, { pageSize: LOAD_PAGE_SIZE, pageToken });
      for (const entry of page.items) {
        index.currentRevision = Math.max(index.currentRevision, entry.revision);
        if (isReservedSpiffeId(entry.spiffeId)) ignored.push(entry);
        else index.graph.put(entry);
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== undefined);
    do {
      const page = await store.listNodes({ pageSize: LOAD_PAGE_SIZE, pageToken });
      for (const node of page.items) {
        // Banned agents get nothing; attestation aliases were never stored, so they start empty.
        if (!node.banned)
          index.agentUpserted({ spiffeId: node.spiffeId, selectors: node.selectors, aliases: [] });
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== undefined);
    if (ignored.length > 0) options.onReservedEntriesIgnored?.(ignored);
    return index;
  }

  /** The store-wide revision the index reflects. */
  get revision(): number {
    return this.currentRevision;
  }

  /** Call after every successful store write, in revision order. */
  entryUpserted(entry: RegistrationEntry): void {
    // Writes refuse reserved IDs; should one get through anyway, it is as good as deleted here.
    if (isReservedSpiffeId(entry.spiffeId)) {
      this.entryDeleted(entry, entry.revision);
      return;
    }
    this.advanceTo(entry.revision);
    const previous = this.graph.put(Object.freeze(entry));
    const isStructural =
      previous === undefined || previous.parentId !== entry.parentId || previous.spiffeId !== entry.spiffeId;
    const write = this.beginWrite(entry.revision);
    const rebuild = new Set<string>();
    const gainedRoots = new Map<string, string[]>();
    const aliasChanged = previous === undefined || isStructural || !sameSelectors(previous, entry);
    if (aliasChanged) this.refreshNodeAliases([previous, entry], rebuild, gainedRoots);
    if (previous !== undefined && isStructural) {
      for (const agentId of this.reverse.reachersOf(previous.parentId)) rebuild.add(agentId);
    }
    for (const agentId of rebuild) this.agents.get(agentId)!.rebuild(this.graph, write.changeFor(agentId));
    for (const [agentId, roots] of gainedRoots) {
      if (rebuild.has(agentId)) continue;
      for (const root of roots) this.agents.get(agentId)!.addRoot(this.graph, root, write.changeFor(agentId));
    }
    // Agents reaching the parent: they hold the entry now (or, if it is new or moved, will).
    const touched = this.reverse.reachersOf(entry.parentId);
    for (const agentId of touched) {
      if (rebuild.has(agentId)) continue;
      const view = this.agents.get(agentId)!;
      if (isStructural) view.addEntry(this.graph, entry, write.changeFor(agentId));
      else view.replaceEntry(entry, write.changeFor(agentId));
    }
    write.finish();
  }

  /** Call after every successful store delete, with the revision the delete took. */
  entryDeleted(entry: RegistrationEntry, revision: number): void {
    this.advanceTo(revision);
    const previous = this.graph.remove(entry.id);
    if (previous === undefined) return;
    const write = this.beginWrite(revision);
    const rebuild = new Set(this.reverse.reachersOf(previous.parentId));
    this.refreshNodeAliases([previous], rebuild, new Map());
    for (const agentId of rebuild) this.agents.get(agentId)!.rebuild(this.graph, write.changeFor(agentId));
    write.finish();
  }

  /**
   * Attestation, re-attestation, or a node record change. The agent's set is recomputed; when it
   * changed, resuming from the current revision or earlier gets a snapshot (no revision marks it).
   */
  agentUpserted(agent: AgentRecord): void {
    const existing = this.agents.get(agent.spiffeId);
    const view = existing ?? new AgentView(agent.spiffeId, this.currentRevision);
    const before = view.selectorKeys;
    view.setSelectors(canonicalSelectors(agent.selectors));
    this.reverse.agentSelectorsChanged(view.id, before, view.selectorKeys);
    view.attestationAliases = Object.freeze([...new Set(agent.aliases)]);
    view.setNodeAliases(this.graph.nodeEntriesMatching(view.selectorKeys));
    this.agents.set(view.id, view);
    const write = this.beginWrite(this.currentRevision);
    const change = write.changeFor(view.id);
    view.rebuild(this.graph, change);
    if (existing !== undefined && !change.delta.isEmpty) view.log.raiseFloor(this.currentRevision);
    write.finish();
  }

  /** Eviction or ban: the agent's listeners get a delta deleting everything it held. */
  agentRemoved(agentSpiffeId: string): void {
    const view = this.agents.get(agentSpiffeId);
    if (view === undefined) return;
    const write = this.beginWrite(this.currentRevision);
    view.clear(write.changeFor(view.id));
    this.reverse.agentSelectorsChanged(view.id, view.selectorKeys, new Set());
    this.agents.delete(view.id);
    write.finish();
  }

  isAuthorized(agentId: string, entryId: string): boolean {
    return this.agents.get(agentId)?.held.has(entryId) ?? false;
  }

  /** Sorted by entry id. An unknown agent holds nothing. */
  entriesFor(agentId: string): RegistrationEntry[] {
    const view = this.agents.get(agentId);
    return view === undefined ? [] : [...view.held.values()].map((a) => a.entry).sort(byId);
  }

  /**
   * The agent's changes after `sinceRevision`, or a snapshot when they cannot be produced: 0, older
   * than the change log window, from before this server loaded or the agent's set last changed
   * outside a revision, or newer than the index (another store's revision).
   */
  changesSince(agentId: string, sinceRevision: number): ChangesSince {
    const view = this.agents.get(agentId);
    const oldestResumable = this.currentRevision - this.changeLogRevisions;
    if (
      view === undefined ||
      !Number.isSafeInteger(sinceRevision) ||
      sinceRevision <= Math.max(0, view.log.floor) ||
      sinceRevision < oldestResumable ||
      sinceRevision > this.currentRevision
    ) {
      return { kind: 'snapshot', entries: this.entriesFor(agentId), revision: this.currentRevision };
    }
    view.log.prune(oldestResumable);
    const upserted: RegistrationEntry[] = [];
    for (const { entry, enteredAt } of view.held.values()) {
      if (entry.revision > sinceRevision || enteredAt > sinceRevision) upserted.push(entry);
    }
    const delta = {
      upserted: upserted.sort(byId),
      deletedIds: view.log.deletedSince(sinceRevision).sort(),
      revision: this.currentRevision,
    };
    return { kind: 'delta', delta };
  }

  /** `listener` gets this agent's delta after each write that changes its set or one of its entries. */
  subscribe(agentId: string, listener: DeltaListener): () => void {
    return this.listeners.add(agentId, listener);
  }

  /** Each held entry with the chain of IDs that authorized it, sorted by entry id. */
  explain(agentId: string): { entry: RegistrationEntry; via: string[] }[] {
    const view = this.agents.get(agentId);
    if (view === undefined) return [];
    return [...view.held.values()]
      .map(({ entry, via }) => ({ entry, via: [...via] }))
      .sort((a, b) => byId(a.entry, b.entry));
  }

  /** Aliases the agent holds: node entries it matches and attestation aliases, sorted. */
  aliasesOf(agentId: string): string[] {
    const view = this.agents.get(agentId);
    if (view === undefined) return [];
    return [...new Set([...view.attestationAliases, ...view.nodeAliases.keys()])].sort();
  }

  /** The aliases given at attestation only: a node record update must keep them. */
  attestationAliasesOf(agentId: string): readonly string[] {
    return this.agents.get(agentId)?.attestationAliases ?? [];
  }

  /** Ids of entries expiring before `nowMs`. A scan of memory: pruning runs rarely. */
  expiredEntryIds(nowMs: number): string[] {
    const ids: string[] = [];
    for (const entry of this.graph.values()) {
      if (entry.expiresAtMs !== null && entry.expiresAtMs < nowMs) ids.push(entry.id);
    }
    return ids;
  }

  private advanceTo(revision: number): void {
    if (!Number.isSafeInteger(revision) || revision < this.currentRevision) {
      throw new SigilError(
        'ERR_REVISION_CONFLICT',
        `authorized entries: a write at revision ${quote(revision)} arrived after revision ${this.currentRevision}; apply writes in revision order`,
        { field: 'revision', reason: 'out-of-order' },
      );
    }
    this.currentRevision = revision;
  }

  /**
   * Re-matches node entries for the agents whose selectors satisfy any of `nodeEntries` (before and
   * after a write). An agent that lost an alias is rebuilt; one that only gained aliases is extended.
   */
  private refreshNodeAliases(
    entries: readonly (RegistrationEntry | undefined)[],
    rebuild: Set<string>,
    gainedRoots: Map<string, string[]>,
  ): void {
    const candidates = new Set<string>();
    for (const entry of entries) {
      if (entry === undefined || !this.graph.isNodeEntry(entry)) continue;
      const keys = selectorKeys(entry.selectors);
      for (const agentId of this.reverse.agentsWithAll(keys, (id) => this.agents.get(id)!.selectorKeys)) {
        candidates.add(agentId);
      }
    }
    for (const agentId of candidates) {
      const view = this.agents.get(agentId)!;
      const { gained, lost } = view.setNodeAliases(this.graph.nodeEntriesMatching(view.selectorKeys));
      if (lost) rebuild.add(agentId);
      else if (gained.length > 0) gainedRoots.set(agentId, gained);
    }
  }

  /** Collects per-agent changes for one write, then delivers one delta per changed agent. */
  private beginWrite(revision: number) {
    const changes = new Map<string, ViewChange>();
    return {
      changeFor: (agentId: string): ViewChange => {
        let change = changes.get(agentId);
        if (change === undefined) {
          change = { revision, tracker: this.reverse, delta: new DeltaBuilder(this.listeners.has(agentId)) };
          changes.set(agentId, change);
        }
        return change;
      },
      finish: () => {
        for (const [agentId, change] of changes) {
          this.agents.get(agentId)?.log.prune(this.currentRevision - this.changeLogRevisions);
          if (!change.delta.isEmpty) this.listeners.notify(agentId, change.delta.build(revision));
        }
      },
    };
  }
}

function sameSelectors(a: RegistrationEntry, b: RegistrationEntry): boolean {
  return (
    a.selectors.length === b.selectors.length &&
    a.selectors.every((s, i) => s.type === b.selectors[i]!.type && s.value === b.selectors[i]!.value)
  );
}
