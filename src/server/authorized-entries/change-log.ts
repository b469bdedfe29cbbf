// What one agent needs to resume a sync: the revision each removal happened at (tombstones), and a
// floor below which nothing can be resumed. An entry's own revision and the revision it (re)entered
// the agent's set live with the authorization itself (agent-view.ts); together they answer "what
// changed after R" without replaying writes. Tombstones are pruned once they fall out of the window.
import type { RegistrationEntry } from '../datastore/index.js';

export interface EntryDelta {
  readonly upserted: RegistrationEntry[];
  readonly deletedIds: string[];
  /** The agent is up to date with this store-wide revision once it has applied the delta. */
  readonly revision: number;
}

export class AgentChangeLog {
  /** Entry id → revision it left the agent's set; kept in revision order (writes arrive in order). */
  private readonly tombstones = new Map<string, number>();
  private floorRevision: number;

  constructor(floorRevision: number) {
    this.floorRevision = floorRevision;
  }

  /**
   * Resumes from at or below this revision get a snapshot: the set changed without a revision of its
   * own (the agent re-attested, or the server started), so "since R" cannot tell before from after.
   */
  get floor(): number {
    return this.floorRevision;
  }

  raiseFloor(revision: number): void {
    this.floorRevision = Math.max(this.floorRevision, revision);
    this.tombstones.clear();
  }

  entered(entryId: string): void {
    this.tombstones.delete(entryId);
  }

  left(entryId: string, revision: number): void {
    // Delete first so a second removal moves to the end and the map stays in revision order.
    this.tombstones.delete(entryId);
    this.tombstones.set(entryId, revision);
  }

  /** Drops tombstones no resumable revision can need (those at or before `oldestResumable`). */
  prune(oldestResumable: number): void {
    for (const [id, revision] of this.tombstones) {
      if (revision > oldestResumable) break;
      this.tombstones.delete(id);
    }
  }

  deletedSince(sinceRevision: number): string[] {
    const ids: string[] = [];
    for (const [id, revision] of this.tombstones) if (revision > sinceRevision) ids.push(id);
    return ids;
  }
}

/**
 * Collects one agent's changes during a single write so listeners get one delta per write. Later
 * operations win: an entry removed then re-added in the same write is an upsert, and vice versa.
 */
export class DeltaBuilder {
  private readonly upserted = new Map<string, RegistrationEntry>();
  private readonly deleted = new Set<string>();
  private changed = false;

  /** `isRecording` false: nobody listens, so only note that something changed (load builds 100,000). */
  constructor(private readonly isRecording: boolean) {}

  upsert(entry: RegistrationEntry): void {
    this.changed = true;
    if (!this.isRecording) return;
    this.deleted.delete(entry.id);
    this.upserted.set(entry.id, entry);
  }

  delete(entryId: string): void {
    this.changed = true;
    if (!this.isRecording) return;
    this.upserted.delete(entryId);
    this.deleted.add(entryId);
  }

  /** False once anything changed, even if it was not recorded. */
  get isEmpty(): boolean {
    return !this.changed;
  }

  build(revision: number): EntryDelta {
    return {
      upserted: [...this.upserted.values()].sort(byId),
      deletedIds: [...this.deleted].sort(),
      revision,
    };
  }
}

export function byId(a: RegistrationEntry, b: RegistrationEntry): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
