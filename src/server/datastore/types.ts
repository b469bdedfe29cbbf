// The datastore contract: one async interface composed per resource. Nothing above it may assume
// SQLite (a PostgreSQL backend implements the same contract and runs the same conformance suite).
// All times are epoch milliseconds; IDs are SPIFFE ID strings already validated by the caller.
import type { Selector } from '../../spiffe/selector.js';

export interface RegistrationEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly parentId: string;
  /** Canonical order (sorted by "type:value"), no duplicates, at least one. */
  readonly selectors: readonly Selector[];
  /** 0 means "the server default". */
  readonly x509SvidTtlMs: number;
  /** 0 means "the server default". */
  readonly jwtSvidTtlMs: number;
  readonly dnsNames: readonly string[];
  /** Trust domain names (no scheme). */
  readonly federatesWith: readonly string[];
  readonly admin: boolean;
  readonly downstream: boolean;
  readonly hint: string;
  readonly expiresAtMs: number | null;
  /** Store-wide revision of the write that last changed this entry; strictly increasing. */
  readonly revision: number;
  readonly createdAtMs: number;
}

/**
 * What a caller supplies to create an entry; the store assigns id (unless given; a given id must be a
 * lowercase UUID), revision, createdAtMs.
 */
export type NewEntry = Omit<RegistrationEntry, 'id' | 'revision' | 'createdAtMs'> & { readonly id?: string };

/** Fields an update may change; absent fields keep their value. */
export type EntryUpdate = Partial<Omit<RegistrationEntry, 'id' | 'revision' | 'createdAtMs'>>;

export type SelectorMatch = 'exact' | 'subset' | 'superset' | 'any';

export interface EntryFilter {
  readonly spiffeId?: string;
  readonly parentId?: string;
  /**
   * exact: the entry's selectors equal these; subset: the entry's are all among these;
   * superset: the entry has all of these (and maybe more); any: the entry has at least one of these.
   * 1 to MAX_FILTER_SELECTORS selectors, else ERR_INPUT_INVALID.
   */
  readonly selectors?: { readonly selectors: readonly Selector[]; readonly match: SelectorMatch };
}

export interface Page {
  /** At most this many results; the store caps it at MAX_PAGE_SIZE. */
  readonly pageSize?: number;
  /** Opaque token returned by the previous page; anything else is ERR_INPUT_INVALID. */
  readonly pageToken?: string;
}

export interface PageOf<T> {
  readonly items: readonly T[];
  /** Absent on the last page. */
  readonly nextPageToken?: string;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
/**
 * Most selectors one listEntries query may carry: keeps it within every engine's bind-parameter limit
 * (SQLite: 32766) and far above what one workload is attested with.
 */
export const MAX_FILTER_SELECTORS = 1000;

export type BatchResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: import('../../spiffe/errors.js').SigilError };

export interface EntryStore {
  /**
   * Throws ERR_ENTRY_DUPLICATE when spiffeId + parentId + selectors (in any order) or the given id
   * already exist; ERR_INPUT_INVALID / ERR_SELECTOR_INVALID for input the store cannot hold.
   */
  createEntry(entry: NewEntry): Promise<RegistrationEntry>;
  /** Each entry is created or refused on its own; the results are in input order. */
  createEntries(entries: readonly NewEntry[]): Promise<BatchResult<RegistrationEntry>[]>;
  /** Throws ERR_ENTRY_NOT_FOUND. */
  fetchEntry(id: string): Promise<RegistrationEntry>;
  listEntries(filter: EntryFilter, page?: Page): Promise<PageOf<RegistrationEntry>>;
  countEntries(): Promise<number>;
  /** Throws ERR_ENTRY_NOT_FOUND, or ERR_ENTRY_DUPLICATE when the change would collide with another entry. */
  updateEntry(id: string, update: EntryUpdate): Promise<RegistrationEntry>;
  /** Throws ERR_ENTRY_NOT_FOUND; returns the deleted entry. */
  deleteEntry(id: string): Promise<RegistrationEntry>;
  deleteEntries(ids: readonly string[]): Promise<BatchResult<RegistrationEntry>[]>;
  /** Deletes entries whose expiresAtMs is before `nowMs`; returns how many. */
  pruneEntries(nowMs: number): Promise<number>;
  /** The store-wide revision of the latest entry write, deletes and prunes included (0 for a new store). */
  currentRevision(): Promise<number>;
}

export interface AttestedNode {
  readonly spiffeId: string;
  readonly attestationType: string;
  /** Serial (hex) of the agent's current SVID; "" after a ban, so it can neither renew nor attest. */
  readonly certSerial: string;
  readonly certNotAfterMs: number;
  /** ID of the X.509 authority that signed the current SVID; absent when not recorded. */
  readonly x509AuthorityId?: string;
  readonly selectors: readonly Selector[];
  readonly banned: boolean;
  readonly canReattest: boolean;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
}

export interface NodeStore {
  /** Creates or replaces the node record (re-attestation replaces). */
  upsertNode(node: AttestedNode): Promise<AttestedNode>;
  /** Throws ERR_NODE_NOT_FOUND. */
  fetchNode(spiffeId: string): Promise<AttestedNode>;
  listNodes(page?: Page): Promise<PageOf<AttestedNode>>;
  /** Evict: deletes the record so the agent must attest again. Throws ERR_NODE_NOT_FOUND. */
  deleteNode(spiffeId: string): Promise<AttestedNode>;
  /** Ban: keeps the record, clears its serial and marks it banned. Throws ERR_NODE_NOT_FOUND. */
  banNode(spiffeId: string, nowMs: number): Promise<AttestedNode>;
}

export interface JoinToken {
  readonly token: string;
  readonly expiresAtMs: number;
  /** An alias the attesting agent also holds, so entries can be parented to it beforehand. */
  readonly spiffeId: string | null;
  readonly createdAtMs: number;
}

export interface TokenStore {
  /** A duplicate token value is ERR_INPUT_INVALID. */
  createJoinToken(token: JoinToken): Promise<JoinToken>;
  /**
   * Reads the token without using it up (commitAttestation spends it): ERR_TOKEN_NOT_FOUND, or
   * ERR_TOKEN_EXPIRED once nowMs >= expiresAtMs.
   */
  fetchJoinToken(token: string, nowMs: number): Promise<JoinToken>;
  listJoinTokens(): Promise<JoinToken[]>;
  /** Deletes tokens with expiresAtMs <= nowMs (those consume would refuse); returns how many. */
  pruneJoinTokens(nowMs: number): Promise<number>;
}

export interface StoredBundle {
  /** Trust domain name, no scheme. */
  readonly trustDomain: string;
  /** The bundle in SPIFFE JSON form (spiffe/bundle.ts encodes and decodes it). */
  readonly bundleJson: string;
  readonly sequence: number;
  readonly updatedAtMs: number;
}

export interface BundleStore {
  /** Creates or replaces. */
  putBundle(bundle: StoredBundle): Promise<StoredBundle>;
  /** null when absent. */
  fetchBundle(trustDomain: string): Promise<StoredBundle | null>;
  listBundles(): Promise<StoredBundle[]>;
  /** Throws ERR_BUNDLE_NOT_FOUND. */
  deleteBundle(trustDomain: string): Promise<void>;
}

/** The CA journal: the CA module's own state (JSON), kept with a version for optimistic updates. */
export interface JournalRecord {
  readonly data: string;
  readonly version: number;
}

export interface JournalStore {
  loadJournal(): Promise<JournalRecord | null>;
  /** Writes `data` if the stored version is still `expectedVersion` (0 = none yet); else ERR_REVISION_CONFLICT. */
  saveJournal(data: string, expectedVersion: number): Promise<JournalRecord>;
}

/** Everything a successful node attestation writes, applied all together or not at all. */
export interface AttestationCommit {
  /** A join token the attestation spends: deleted in the same transaction, which fails if it is gone. */
  readonly joinToken?: string;
  /** Tokens with expiresAtMs <= nowMs are refused (ERR_TOKEN_EXPIRED). */
  readonly nowMs: number;
  /** The node record to create or replace. */
  readonly node: AttestedNode;
  /** Alias entries to create; one identical to a stored entry (same ID, parent, selectors) is kept as is. */
  readonly aliasEntries: readonly NewEntry[];
}

export interface AttestationStore {
  /**
   * Commits an attestation in ONE transaction: spends the join token, writes the node record and
   * creates the alias entries, or changes nothing. Refuses with ERR_TOKEN_NOT_FOUND / ERR_TOKEN_EXPIRED
   * when the token is already spent or expired (so of two attestations racing with one token exactly
   * one commits), and with ERR_PERMISSION_DENIED when the stored node is banned (a ban made while the
   * attestation ran must not be overwritten). Returns the node and the entries it created.
   */
  commitAttestation(
    commit: AttestationCommit,
  ): Promise<{ readonly node: AttestedNode; readonly createdEntries: readonly RegistrationEntry[] }>;
}

export interface DataStore
  extends EntryStore,
    NodeStore,
    TokenStore,
    AttestationStore,
    BundleStore,
    JournalStore {
  /** Idempotent; afterwards every method rejects with ERR_DATASTORE. */
  close(): Promise<void>;
}
