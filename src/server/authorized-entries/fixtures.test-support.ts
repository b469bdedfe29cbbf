// Builders for the authorized-entries tests: entries as a store would return them, and an index fed
// by hand with increasing revisions, so each test states only the graph it is about.

import { parseSelector } from '../../spiffe/selector.js';
import type { RegistrationEntry } from '../datastore/index.js';
import { AuthorizedEntries, type AuthorizedEntriesOptions, type EntryDelta } from './index.js';

export const TD = 'spiffe://example.org';
export const SERVER_ID = `${TD}/sigil/server`;
export const AGENT = `${TD}/sigil/agent/a`;
export const OTHER_AGENT = `${TD}/sigil/agent/b`;

export const sel = (...texts: string[]) => texts.map((t) => parseSelector(t));

export interface EntrySpec {
  id: string;
  spiffeId: string;
  parentId: string;
  selectors?: string[];
  hint?: string;
  expiresAtMs?: number | null;
}

export function makeEntry(spec: EntrySpec, revision: number): RegistrationEntry {
  return Object.freeze({
    id: spec.id,
    spiffeId: spec.spiffeId,
    parentId: spec.parentId,
    selectors: sel(...(spec.selectors ?? ['unix:uid:1000'])).sort((a, b) =>
      `${a.type}:${a.value}` < `${b.type}:${b.value}` ? -1 : 1,
    ),
    x509SvidTtlMs: 0,
    jwtSvidTtlMs: 0,
    dnsNames: [],
    federatesWith: [],
    admin: false,
    downstream: false,
    hint: spec.hint ?? '',
    expiresAtMs: spec.expiresAtMs ?? null,
    revision,
    createdAtMs: 0,
  });
}

/** An index over an empty store, written to directly as observe-entry-writes would. */
export async function emptyIndex(options: AuthorizedEntriesOptions = {}) {
  const index = await AuthorizedEntries.load(
    {
      currentRevision: async () => 0,
      listEntries: async () => ({ items: [] }),
      listNodes: async () => ({ items: [] }),
    },
    SERVER_ID,
    options,
  );
  let revision = 0;
  const current = new Map<string, RegistrationEntry>();
  return {
    index,
    get revision() {
      return revision;
    },
    put(spec: EntrySpec): RegistrationEntry {
      const entry = makeEntry(spec, ++revision);
      current.set(entry.id, entry);
      index.entryUpserted(entry);
      return entry;
    },
    remove(id: string): void {
      const entry = current.get(id)!;
      current.delete(id);
      index.entryDeleted(entry, ++revision);
    },
    /** A store write that touches no entry of interest, to move the revision on. */
    bump(): void {
      index.entryUpserted(
        makeEntry({ id: `noise-${revision}`, spiffeId: `${TD}/noise`, parentId: `${TD}/nobody` }, ++revision),
      );
    },
  };
}

export const ids = (entries: readonly RegistrationEntry[]) => entries.map((e) => e.id).sort();

/** Applies deltas to a snapshot the way an agent's cache does. */
export function applyDelta(state: Map<string, RegistrationEntry>, delta: EntryDelta): void {
  for (const id of delta.deletedIds) state.delete(id);
  for (const entry of delta.upserted) state.set(entry.id, entry);
}
