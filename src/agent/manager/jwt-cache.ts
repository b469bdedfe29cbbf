// JWT-SVIDs by (entry, audience set), reused until half their lifetime has passed. Audiences come
// from workloads, so the cache is bounded by bytes (tokens and keys) as well as by count: bounded
// by count alone, 733 tokens for 2.5 MB audiences exhausted the agent's heap. It is also fair
// between identities: one entry's tokens may take at most 1/ENTRY_SHARE_DIVISOR of either bound, so
// a workload cycling through audiences evicts its own tokens first and never more than that share
// of everyone else's. (Fairness is per entry, not per process: workloads that share an entry are
// the same identity, and one workload matching many entries is an operator's choice.)
// Concurrent requests for the same token share one signer call.
import type { Clock } from '../../spiffe/clock.js';

export interface JwtSvidCacheLimits {
  /** Tokens kept at most. */
  readonly maxTokens: number;
  /** Bytes kept at most: token and key lengths, plus PER_TOKEN_OVERHEAD_BYTES each. */
  readonly maxBytes: number;
}

/** Cached tokens kept at most; the least recently used go first. */
export const DEFAULT_MAX_JWT_SVIDS = 10_000;
/**
 * 16 MiB: ten thousand typical tokens (under 1 KiB each) fit, and so do about four hundred of the
 * largest the audience limits allow (16 audiences of 1 KiB: ~40 KiB with its key).
 */
export const DEFAULT_MAX_JWT_SVID_BYTES = 16 * 1024 * 1024;
/** One entry may hold at most 1/8 of the cache (by count and by bytes). */
export const ENTRY_SHARE_DIVISOR = 8;
/** Map slot, record and string headers of one cached token, beyond its characters: an estimate. */
const PER_TOKEN_OVERHEAD_BYTES = 256;

interface CachedJwt {
  readonly key: string;
  readonly entryId: string;
  readonly token: string;
  readonly refreshAtMs: number;
  readonly bytes: number;
}

interface EntryShare {
  /** This entry's tokens; Map order is its LRU order. */
  readonly tokens: Map<string, CachedJwt>;
  bytes: number;
}

interface InFlight {
  token: Promise<string>;
  /** Set when the entry was dropped meanwhile: the token is returned to its caller but not cached. */
  dropped: boolean;
}

export type JwtMint = () => Promise<{ token: string; expiresAtMs: number }>;

export class JwtSvidCache {
  /** Map order is the global LRU order. */
  private readonly tokens = new Map<string, CachedJwt>();
  private readonly entries = new Map<string, EntryShare>();
  private readonly inFlight = new Map<string, InFlight>();
  private totalBytes = 0;
  private readonly limits: JwtSvidCacheLimits;
  /** What one entry may hold. */
  private readonly share: JwtSvidCacheLimits;

  constructor(
    private readonly clock: Clock,
    limits: Partial<JwtSvidCacheLimits> = {},
  ) {
    const maxTokens = limits.maxTokens ?? DEFAULT_MAX_JWT_SVIDS;
    const maxBytes = limits.maxBytes ?? DEFAULT_MAX_JWT_SVID_BYTES;
    this.limits = { maxTokens, maxBytes };
    this.share = {
      maxTokens: Math.max(1, Math.floor(maxTokens / ENTRY_SHARE_DIVISOR)),
      maxBytes: maxBytes / ENTRY_SHARE_DIVISOR,
    };
  }

  get size(): number {
    return this.tokens.size;
  }

  /** Bytes held, as counted against `maxBytes`. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Tokens and bytes held for one entry. */
  shareOf(entryId: string): { tokens: number; bytes: number } {
    const share = this.entries.get(entryId);
    return { tokens: share?.tokens.size ?? 0, bytes: share?.bytes ?? 0 };
  }

  /** A token for `entryId` and `audience` (order and duplicates ignored), from cache or `mint`. */
  async get(entryId: string, audience: readonly string[], mint: JwtMint): Promise<string> {
    const key = cacheKey(entryId, audience);
    const cached = this.tokens.get(key);
    if (cached !== undefined && this.clock.nowMs() < cached.refreshAtMs) {
      this.touch(cached);
      return cached.token;
    }
    const pending = this.inFlight.get(key);
    if (pending !== undefined) return pending.token;
    const flight: InFlight = { token: Promise.resolve(''), dropped: false };
    flight.token = this.mintInto(key, entryId, mint, flight);
    this.inFlight.set(key, flight);
    try {
      return await flight.token;
    } finally {
      if (this.inFlight.get(key) === flight) this.inFlight.delete(key);
    }
  }

  /** Forgets the entry's tokens (entry deleted, or its SPIFFE ID changed). */
  dropEntry(entryId: string): void {
    for (const cached of [...(this.entries.get(entryId)?.tokens.values() ?? [])]) this.remove(cached);
    // An in-flight mint for the entry must not repopulate the cache when it lands.
    for (const [key, flight] of this.inFlight) {
      if (!key.startsWith(`${entryId}\n`)) continue;
      flight.dropped = true;
      this.inFlight.delete(key);
    }
  }

  private async mintInto(key: string, entryId: string, mint: JwtMint, flight: InFlight): Promise<string> {
    const issuedAtMs = this.clock.nowMs();
    const { token, expiresAtMs } = await mint();
    if (flight.dropped) return token;
    const stale = this.tokens.get(key);
    if (stale) this.remove(stale);
    const bytes = key.length + token.length + PER_TOKEN_OVERHEAD_BYTES;
    // A token larger than an entry's share would evict everything and still not fit: serve it uncached.
    if (bytes > this.share.maxBytes) return token;
    const refreshAtMs = issuedAtMs + (expiresAtMs - issuedAtMs) / 2;
    this.insert({ key, entryId, token, bytes, refreshAtMs });
    // The entry's own least recently used tokens go first, then the globally least recently used.
    const own = this.entries.get(entryId)!;
    this.evictWhile(
      own.tokens,
      () => own.tokens.size > this.share.maxTokens || own.bytes > this.share.maxBytes,
    );
    this.evictWhile(
      this.tokens,
      () => this.tokens.size > this.limits.maxTokens || this.totalBytes > this.limits.maxBytes,
    );
    return token;
  }

  /** Removes the least recently used of `lru` while `over()` holds. */
  private evictWhile(lru: Map<string, CachedJwt>, over: () => boolean): void {
    for (const oldest of lru.values()) {
      if (!over()) break;
      this.remove(oldest);
    }
  }

  private insert(cached: CachedJwt): void {
    this.tokens.set(cached.key, cached);
    let share = this.entries.get(cached.entryId);
    if (!share) {
      share = { tokens: new Map(), bytes: 0 };
      this.entries.set(cached.entryId, share);
    }
    share.tokens.set(cached.key, cached);
    share.bytes += cached.bytes;
    this.totalBytes += cached.bytes;
  }

  private remove(cached: CachedJwt): void {
    if (this.tokens.get(cached.key) !== cached) return;
    this.tokens.delete(cached.key);
    const share = this.entries.get(cached.entryId)!;
    share.tokens.delete(cached.key);
    share.bytes -= cached.bytes;
    this.totalBytes -= cached.bytes;
    if (share.tokens.size === 0) this.entries.delete(cached.entryId);
  }

  /** Moves a token to the fresh end of both LRU orders. */
  private touch(cached: CachedJwt): void {
    this.tokens.delete(cached.key);
    this.tokens.set(cached.key, cached);
    const share = this.entries.get(cached.entryId)!;
    share.tokens.delete(cached.key);
    share.tokens.set(cached.key, cached);
  }
}

/** Entry ids never contain a newline (server-generated), so `\n` cannot make two keys collide. */
function cacheKey(entryId: string, audience: readonly string[]): string {
  return `${entryId}\n${JSON.stringify([...new Set(audience)].sort())}`;
}
