// The minted X509-SVIDs, one per entry, in least-recently-used order, plus the check that each still
// chains to the trust bundle. It owns the data it hands out: views are frozen and shared by every
// watcher (STYLE §3). Which entries to mint and when to evict are decided by the manager.
import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import { parseCertificate } from '../../spiffe/x509-certificate.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import type { WorkloadX509Svid } from '../workloadapi/identity-feed.js';

export interface CachedSvid {
  readonly entryId: string;
  /** svidFieldsKey of the entry it was minted for: a different key means it is outdated. */
  readonly fieldsKey: string;
  readonly spiffeId: string;
  readonly chain: readonly Buffer[];
  readonly key: KeyObject;
  readonly notBeforeMs: number;
  readonly expiresAtMs: number;
  readonly renewAtMs: number;
  readonly serialHex: string;
  /** Issuer name (DER, hex) of the chain's last certificate: the certificate a bundle authority must have signed. */
  readonly topIssuer: string;
  /** SHA-256 (hex) of the bundle authority the chain ends at, when one was found. */
  anchor: string | undefined;
  /** What workloads see; replaced (not mutated) when only the entry's hint changes. */
  view: WorkloadX509Svid;
}

export class SvidCache {
  /** Map order is the LRU order: the first key is the least recently used. */
  private readonly items = new Map<string, CachedSvid>();
  /**
   * No SVID held expires before this: a lower bound, lowered by set() and raised only by a scan
   * (dropExpired), so that counting the unexpired ones is O(1) until one may have expired.
   */
  private expiryFloorMs = Number.POSITIVE_INFINITY;

  get size(): number {
    return this.items.size;
  }

  /** When the next SVID may expire (Infinity: none held); dropExpired() then finds it. */
  get nextExpiryMs(): number {
    return this.expiryFloorMs;
  }

  get(entryId: string): CachedSvid | undefined {
    return this.items.get(entryId);
  }

  values(): IterableIterator<CachedSvid> {
    return this.items.values();
  }

  set(svid: CachedSvid): void {
    this.items.delete(svid.entryId);
    this.items.set(svid.entryId, svid);
    this.expiryFloorMs = Math.min(this.expiryFloorMs, svid.expiresAtMs);
  }

  /** SVIDs still valid at `nowMs` (expired ones are counted out until dropExpired removes them). */
  countUnexpired(nowMs: number): number {
    if (nowMs < this.expiryFloorMs) return this.items.size;
    let count = 0;
    for (const svid of this.items.values()) if (!isExpired(svid, nowMs)) count++;
    return count;
  }

  /** Removes the SVIDs expired at `nowMs` (past notAfter: no workload may be handed one); returns their entry ids. */
  dropExpired(nowMs: number): string[] {
    if (nowMs < this.expiryFloorMs) return [];
    const dropped: string[] = [];
    let floorMs = Number.POSITIVE_INFINITY;
    for (const svid of this.items.values()) {
      if (isExpired(svid, nowMs)) {
        this.items.delete(svid.entryId);
        dropped.push(svid.entryId);
      } else floorMs = Math.min(floorMs, svid.expiresAtMs);
    }
    this.expiryFloorMs = floorMs;
    return dropped;
  }

  delete(entryId: string): boolean {
    return this.items.delete(entryId);
  }

  /** Marks the entry's SVID as just used, moving it to the end of the eviction order. */
  touch(entryId: string): void {
    const svid = this.items.get(entryId);
    if (svid === undefined) return;
    this.items.delete(entryId);
    this.items.set(entryId, svid);
  }

  /** The shared view with `hint`, rebuilt once per hint change rather than per reader. */
  viewWithHint(svid: CachedSvid, hint: string): WorkloadX509Svid {
    if (svid.view.hint !== hint) svid.view = Object.freeze({ ...svid.view, hint });
    return svid.view;
  }

  /**
   * Evicts least-recently-used SVIDs until at most `max` remain, skipping pinned ones (those live
   * workloads hold: dropping them would redact an identity in use). Returns the evicted entry ids.
   */
  evict(max: number, isPinned: (entryId: string) => boolean): string[] {
    const evicted: string[] = [];
    if (this.items.size <= max) return evicted;
    for (const entryId of this.items.keys()) {
      if (this.items.size <= max) break;
      if (isPinned(entryId)) continue;
      this.items.delete(entryId);
      evicted.push(entryId);
    }
    return evicted;
  }

  /**
   * Re-anchors every SVID against a new bundle and returns the entry ids whose chain no longer leads
   * to any of its authorities (the CA was rotated away): those need a new SVID. The costly signature
   * check runs once per distinct issuer, not per SVID, since thousands of SVIDs share one CA.
   */
  reanchor(authorities: readonly Buffer[]): string[] {
    const byFingerprint = new Map(authorities.map((der) => [fingerprint(der), der] as const));
    const byIssuer = new Map<string, string | undefined>();
    const lost: string[] = [];
    for (const svid of this.items.values()) {
      if (svid.anchor !== undefined && byFingerprint.has(svid.anchor)) continue;
      if (!byIssuer.has(svid.topIssuer)) byIssuer.set(svid.topIssuer, findAnchor(svid.chain, authorities));
      svid.anchor = byIssuer.get(svid.topIssuer);
      if (svid.anchor === undefined) lost.push(svid.entryId);
    }
    return lost;
  }
}

/** Expired at notAfter itself, as the decoder of the persisted cache counts it. */
export function isExpired(svid: { readonly expiresAtMs: number }, nowMs: number): boolean {
  return svid.expiresAtMs <= nowMs;
}

/** Entries whose chain passes through an intermediate with one of these subject key IDs (upstream mode). */
export function signedThrough(svids: Iterable<CachedSvid>, subjectKeyIds: ReadonlySet<string>): string[] {
  if (subjectKeyIds.size === 0) return [];
  const hit: string[] = [];
  for (const svid of svids) {
    if (
      svid.chain.slice(1).some((der) => subjectKeyIds.has(describeCertificate(der).subjectKeyIdHex ?? ''))
    ) {
      hit.push(svid.entryId);
    }
  }
  return hit;
}

/**
 * The fingerprint of the bundle authority `chain` ends at: one that is in the chain itself, or that
 * issued (and signed) the chain's last certificate. Undefined when the bundle has no such authority.
 */
export function findAnchor(chain: readonly Buffer[], authorities: readonly Buffer[]): string | undefined {
  for (const der of authorities) {
    if (chain.some((c) => c.equals(der))) return fingerprint(der);
  }
  const top = new X509Certificate(chain[chain.length - 1]!);
  for (const der of authorities) {
    const authority = new X509Certificate(der);
    if (top.checkIssued(authority) && top.verify(authority.publicKey)) return fingerprint(der);
  }
  return undefined;
}

/**
 * The issuer of the chain's last certificate, which is what a bundle authority must match: its DER,
 * in hex. Read with our DER parser, not node:crypto's X509Certificate, which costs ~120 µs a
 * certificate (Node 20) and dominated loading 10,000 persisted SVIDs.
 */
export function topIssuerOf(chain: readonly Buffer[]): string {
  return parseCertificate(chain[chain.length - 1]!).issuerDer.toString('hex');
}

function fingerprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}
