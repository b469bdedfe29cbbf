// Observers of store writes that other parts of the server react to: bundle writes refresh the
// bundle feed, agent evictions and bans end the agent's open streams. Entry writes are observed by
// the authorized-entries index itself (observeEntryWrites).
import type { DataStore } from './datastore/types.js';

export interface WriteHooks {
  bundleWritten(trustDomain: string): void | Promise<void>;
  agentRemoved(agentId: string): void;
}

export function observeServerWrites(store: DataStore, hooks: WriteHooks): DataStore {
  return Object.assign(Object.create(store) as DataStore, {
    async putBundle(...args: Parameters<DataStore['putBundle']>) {
      const stored = await store.putBundle(...args);
      await hooks.bundleWritten(stored.trustDomain);
      return stored;
    },
    async deleteBundle(trustDomain: string) {
      await store.deleteBundle(trustDomain);
      await hooks.bundleWritten(trustDomain);
    },
    async deleteNode(spiffeId: string) {
      const node = await store.deleteNode(spiffeId);
      hooks.agentRemoved(spiffeId);
      return node;
    },
    async banNode(spiffeId: string, nowMs: number) {
      const node = await store.banNode(spiffeId, nowMs);
      hooks.agentRemoved(spiffeId);
      return node;
    },
  });
}
