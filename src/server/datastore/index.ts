// The datastore component's public surface: open a store from config, and the contract's types.
// Engines stay behind openDataStore so nothing above this folder learns which one it talks to.
import type { Clock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';
import type { DataStore } from './types.js';

export type DataStoreConfig =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly connectionString: string };

export async function openDataStore(config: DataStoreConfig, clock: Clock): Promise<DataStore> {
  switch (config.kind) {
    case 'sqlite':
      return openSqliteStore({ path: config.path, clock });
    case 'postgres':
      throw new SigilError('ERR_NOT_IMPLEMENTED', 'the postgres datastore is not available yet; use sqlite', {
        field: 'datastore.kind',
        reason: 'postgres',
      });
  }
}

export type {
  AttestedNode,
  BatchResult,
  BundleStore,
  DataStore,
  EntryFilter,
  EntryStore,
  EntryUpdate,
  JoinToken,
  JournalRecord,
  JournalStore,
  NewEntry,
  NodeStore,
  Page,
  PageOf,
  RegistrationEntry,
  SelectorMatch,
  StoredBundle,
  TokenStore,
} from './types.js';
export { DEFAULT_PAGE_SIZE, MAX_FILTER_SELECTORS, MAX_PAGE_SIZE } from './types.js';
