// What an agent may get: the server's incremental index of authorized entries, and the store
// decorator that keeps it current. Everything else in this folder is internal.
export type {
  AgentRecord,
  AuthorizedEntriesOptions,
  ChangesSince,
  IndexSource,
} from './authorized-entries.js';
export { AuthorizedEntries } from './authorized-entries.js';
export type { EntryDelta } from './change-log.js';
export type { DeltaListener } from './listeners.js';
export { observeEntryWrites } from './observe-entry-writes.js';
