// JWT-SVIDs by (entry, audience set), reused until half their lifetime has passed. Bounded, because
// audiences come from workloads: a workload cycling through audiences must not grow agent memory.
// Concurrent requests for the same token share one signer call.
import type { Clock } from '../../spiffe/clock.js';

/** Cached tokens kept at most; the least recently used go first. */
const MAX_JWT_SVIDS = 10_000;

interface CachedJwt {
  readonly entryId: string;
  readonly token: string;
  readonly refreshAtMs: number;
}

interface InFlight {
  token: Promise<string>;
  /** Set when the entry was dropped meanwhile: the token is returned to its caller but not cached. */
  dropped: boolean;
}

export type JwtMint = () => Promise<{ token: string; expiresAtMs: number }>;

export class JwtSvidCache {
  /** Map order is the LRU order. */
  private readonly tokens = new Map<string, CachedJwt>();
  private readonly inFlight = new Map<string, InFlight>();

  constructor(
    private readonly clock: Clock,
    private readonly maxTokens = MAX_JWT_SVIDS,
  ) {}

  get size(): number {
    return this.tokens.size;
  }

  /** A token for `entryId` and `audience` (order and duplicates ignored), from cache or `mint`. */
  async get(entryId: string, audience: readonly string[], mint: JwtMint): Promise<string> {
    const key = cacheKey(entryId, audience);
    const cached = this.tokens.get(key);
    if (cached !== undefined && this.clock.nowMs() < cached.refreshAtMs) {
      this.tokens.delete(key);
      this.tokens.set(key, cached);
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
    for (const [key, cached] of this.tokens) if (cached.entryId === entryId) this.tokens.delete(key);
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
    this.tokens.delete(key);
    this.tokens.set(key, { entryId, token, refreshAtMs: issuedAtMs + (expiresAtMs - issuedAtMs) / 2 });
    for (const oldest of this.tokens.keys()) {
      if (this.tokens.size <= this.maxTokens) break;
      this.tokens.delete(oldest);
    }
    return token;
  }
}

/** Entry ids never contain a newline (server-generated), so `\n` cannot make two keys collide. */
function cacheKey(entryId: string, audience: readonly string[]): string {
  return `${entryId}\n${JSON.stringify([...new Set(audience)].sort())}`;
}
