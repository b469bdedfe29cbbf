// Shared fixtures for the conformance suites: builders for valid input, and an assertion on error
// codes (never messages, which each engine words its own way).
import { expect } from 'vitest';
import { isSigilError, type SigilErrorCode } from '../../../spiffe/errors.js';
import { parseSelector, type Selector } from '../../../spiffe/selector.js';
import type { AttestedNode, DataStore, EntryFilter, NewEntry, Page, RegistrationEntry } from '../types.js';

export interface ConformanceHarness {
  /** A freshly opened store over an empty database. */
  readonly store: DataStore;
  /** Closes the current store and opens the same database again, as a server restart would. */
  reopen(): Promise<DataStore>;
  /** Closes whatever store is open and removes the database. */
  cleanup(): Promise<void>;
}

/** What each suite reads in its tests; refreshed before every test. */
export interface ConformanceContext {
  readonly harness: ConformanceHarness;
  readonly store: DataStore;
}

export const TD = 'spiffe://example.org';
export const PARENT = `${TD}/agent/a`;
export const OTHER_PARENT = `${TD}/agent/b`;

/** Selectors from "type:value" strings, in the order given (the store must canonicalise). */
export function sels(...texts: string[]): Selector[] {
  return texts.map((t) => parseSelector(t));
}

export function newEntry(overrides: Partial<NewEntry> = {}): NewEntry {
  return {
    spiffeId: `${TD}/workload/default`,
    parentId: PARENT,
    selectors: sels('unix:uid:1000'),
    x509SvidTtlMs: 0,
    jwtSvidTtlMs: 0,
    dnsNames: [],
    federatesWith: [],
    admin: false,
    downstream: false,
    hint: '',
    expiresAtMs: null,
    ...overrides,
  };
}

export async function expectCode(promise: Promise<unknown>, code: SigilErrorCode): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a rejection with ${code}`).toBeDefined();
  expect(isSigilError(err), `expected a SigilError, got ${String(err)}`).toBe(true);
  expect(err).toMatchObject({ code });
}

/** Reads every page of a listing, checking page sizes on the way. */
export async function listAll(
  store: DataStore,
  filter: EntryFilter,
  pageSize: number,
): Promise<RegistrationEntry[]> {
  const all: RegistrationEntry[] = [];
  let page: Page = { pageSize };
  for (let guard = 0; guard < 10_000; guard++) {
    const result = await store.listEntries(filter, page);
    all.push(...result.items);
    if (result.nextPageToken === undefined) return all;
    expect(result.items).toHaveLength(pageSize);
    page = { pageSize, pageToken: result.nextPageToken };
  }
  throw new Error('pagination did not terminate');
}

export function node(spiffeId: string, overrides: Partial<AttestedNode> = {}): AttestedNode {
  return {
    spiffeId,
    attestationType: 'join_token',
    certSerial: '0a1b2c',
    certNotAfterMs: 1_700_003_600_000,
    selectors: sels('join_token:abc'),
    banned: false,
    canReattest: false,
    createdAtMs: 1_700_000_000_000,
    updatedAtMs: 1_700_000_000_000,
    ...overrides,
  };
}
