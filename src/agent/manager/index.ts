// The agent manager: entries from the sync stream in, SVIDs and bundles out to the Workload API.

export type { NearMatch } from './entry-cache.js';
export type { SvidStatus } from './manager.js';
export { AgentManager } from './manager.js';
export type { AgentManagerOptions } from './manager-options.js';
export type { PersistedCache } from './persisted-cache.js';
export type { SvidStore, SvidStoreKind, SvidStoreOptions } from './svid-store.js';
export { createSvidStore, SVID_STORE_FILE } from './svid-store.js';
export type { AgentEntry, SignedSvid, SvidSigner, SyncUpdate } from './types.js';
