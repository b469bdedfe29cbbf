// The agent manager's view of the world: entries pushed by the server's sync stream, and what it
// needs from the server connection to get SVIDs. Declared here so the manager is tested with fakes
// and the server client stays a detail of src/agent/server-client.
import type { TrustBundle } from '../../spiffe/bundle.js';
import type { Selector } from '../../spiffe/selector.js';

/** A registration entry as the agent receives it (times in ms, 0 TTL = server default). */
export interface AgentEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly parentId: string;
  /** Canonical order. */
  readonly selectors: readonly Selector[];
  readonly x509SvidTtlMs: number;
  readonly jwtSvidTtlMs: number;
  readonly dnsNames: readonly string[];
  readonly federatesWith: readonly string[];
  readonly admin: boolean;
  readonly downstream: boolean;
  readonly hint: string;
  /** null = never. */
  readonly expiresAtMs: number | null;
  readonly revision: number;
}

/** One message of the sync stream, decoded. A snapshot replaces every entry the agent knew. */
export interface SyncUpdate {
  readonly snapshot: boolean;
  readonly upserted: readonly AgentEntry[];
  readonly deletedIds: readonly string[];
  readonly revision: number;
  /** Present when the own bundle changed. */
  readonly bundle?: TrustBundle;
  /** Present (possibly empty) when the set of federated bundles changed: the complete set. */
  readonly federatedBundles?: ReadonlyMap<string, TrustBundle>;
  /** Present with `bundle`: subject key IDs (hex) of tainted X.509 authorities; their SVIDs are replaced. */
  readonly taintedAuthorities?: ReadonlySet<string>;
}

export interface SignedSvid {
  readonly entryId: string;
  /** DER, leaf first; absent when `error` is set. */
  readonly chain?: readonly Buffer[];
  readonly expiresAtMs?: number;
  readonly error?: string;
}

/** What the manager needs from the server connection. */
export interface SvidSigner {
  /** Signs CSRs (PKCS#10 DER) for authorized entries, in one call; results in request order. */
  signX509Svids(requests: readonly { entryId: string; csr: Buffer }[]): Promise<SignedSvid[]>;
  mintJwtSvid(entryId: string, audience: readonly string[]): Promise<{ token: string; expiresAtMs: number }>;
}
