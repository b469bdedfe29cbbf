// Per-agent delta listeners (the SyncEntries streams). Kept apart from the agent views so a stream
// survives its agent being evicted and attesting again: it sees the eviction's deletions, then the
// new set, and stays equal to entriesFor throughout.
import type { EntryDelta } from './change-log.js';

export type DeltaListener = (delta: EntryDelta) => void;

export class DeltaListeners {
  private readonly byAgent = new Map<string, Set<DeltaListener>>();

  constructor(private readonly onError: (error: unknown, agentId: string) => void) {}

  add(agentId: string, listener: DeltaListener): () => void {
    let set = this.byAgent.get(agentId);
    if (set === undefined) {
      set = new Set();
      this.byAgent.set(agentId, set);
    }
    set.add(listener);
    return () => this.remove(agentId, listener);
  }

  has(agentId: string): boolean {
    return this.byAgent.has(agentId);
  }

  /** A listener that throws is removed (its stream is broken) and its error reported; the rest still run. */
  notify(agentId: string, delta: EntryDelta): void {
    for (const listener of [...(this.byAgent.get(agentId) ?? [])]) {
      try {
        listener(delta);
      } catch (error) {
        this.remove(agentId, listener);
        this.onError(error, agentId);
      }
    }
  }

  private remove(agentId: string, listener: DeltaListener): void {
    const set = this.byAgent.get(agentId);
    set?.delete(listener);
    if (set?.size === 0) this.byAgent.delete(agentId);
  }
}
