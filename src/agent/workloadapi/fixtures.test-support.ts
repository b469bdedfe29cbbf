// Test support for the Workload API: a throwaway trust domain that mints X.509- and JWT-SVIDs, and
// a small IdentityFeed fake keyed by one selector, whose identities tests change to drive streams.

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { EventEmitter, on } from 'node:events';
import { createTrustBundle, type TrustBundle } from '../../spiffe/bundle.js';
import { parseSpiffeId, parseTrustDomain, type TrustDomain } from '../../spiffe/id.js';
import { mintJwtSvid } from '../../spiffe/jwt-svid.js';
import { generateKey } from '../../spiffe/keys.js';
import { formatSelector, type Selector } from '../../spiffe/selector.js';
import { createCaCertificate } from '../../spiffe/x509-authority.js';
import { mintX509Svid, prepareIssuer, type X509Issuer } from '../../spiffe/x509-svid.js';
import type { IdentityFeed, WorkloadIdentity, WorkloadJwtSvid, WorkloadX509Svid } from './identity-feed.js';

const HOUR_MS = 3_600_000;

export interface TestTrustDomain {
  readonly trustDomain: TrustDomain;
  readonly bundle: TrustBundle;
  mintX509(path: string, options?: { hint?: string; nowMs?: number }): WorkloadX509Svid;
  mintJwt(path: string, audience: readonly string[], nowMs: number): string;
}

export async function makeTestTrustDomain(name: string, nowMs: number): Promise<TestTrustDomain> {
  const trustDomain = parseTrustDomain(name);
  const caKey = generateKey('ec-p256');
  const caDer = await createCaCertificate({
    trustDomain,
    key: caKey,
    notBeforeMs: nowMs - HOUR_MS,
    notAfterMs: nowMs + 24 * HOUR_MS,
  });
  const issuer: X509Issuer = prepareIssuer(caDer, caKey);
  const jwtKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = `kid-${name}`;
  const bundle = createTrustBundle({
    trustDomain,
    x509Authorities: [caDer],
    jwtAuthorities: [{ kid, publicKey: jwtKey.publicKey }],
  });
  return {
    trustDomain,
    bundle,
    mintX509(path, options = {}) {
      const at = options.nowMs ?? nowMs;
      const key: KeyObject = generateKey('ec-p256');
      const spiffeId = parseSpiffeId(`spiffe://${name}${path}`);
      const leaf = mintX509Svid(
        { spiffeId, publicKey: key, notBeforeMs: at - 10_000, notAfterMs: at + HOUR_MS },
        issuer,
      );
      return Object.freeze({
        spiffeId: spiffeId.toString(),
        chain: [leaf],
        key,
        hint: options.hint ?? '',
        expiresAtMs: at + HOUR_MS,
      });
    },
    mintJwt(path, audience, at) {
      return mintJwtSvid({
        spiffeId: parseSpiffeId(`spiffe://${name}${path}`),
        audience,
        issuedAtMs: at,
        expiresAtMs: at + HOUR_MS,
        key: jwtKey.privateKey,
        kid,
      });
    },
  };
}

/** An IdentityFeed whose identities are set per selector ("unix:uid:65534") by the test. */
export class FakeIdentityFeed implements IdentityFeed {
  private readonly identities = new Map<string, WorkloadIdentity>();
  private readonly jwt = new Map<string, WorkloadJwtSvid[]>();
  private readonly changes = new EventEmitter();
  /** Every selector list a watch or fetch was asked with, to check what attestation produced. */
  readonly seenSelectors: string[][] = [];

  constructor(private readonly allBundles: ReadonlyMap<string, TrustBundle>) {
    this.changes.setMaxListeners(100);
  }

  set(selector: string, identity: WorkloadIdentity): void {
    this.identities.set(selector, identity);
    this.changes.emit('change');
  }

  setJwt(selector: string, svids: WorkloadJwtSvid[]): void {
    this.jwt.set(selector, svids);
  }

  async *watch(selectors: readonly Selector[], signal: AbortSignal): AsyncIterable<WorkloadIdentity> {
    const keys = selectors.map(formatSelector);
    this.seenSelectors.push(keys);
    const changes = on(this.changes, 'change', { signal });
    yield this.lookup(keys);
    try {
      for await (const _ of changes) yield this.lookup(keys);
    } catch (err) {
      if (!signal.aborted) throw err;
    }
  }

  async fetchJwtSvids(selectors: readonly Selector[], _audience: readonly string[], spiffeId?: string) {
    const keys = selectors.map(formatSelector);
    this.seenSelectors.push(keys);
    const svids = keys.flatMap((k) => this.jwt.get(k) ?? []);
    return spiffeId === undefined ? svids : svids.filter((s) => s.spiffeId === spiffeId);
  }

  bundles(): ReadonlyMap<string, TrustBundle> {
    return this.allBundles;
  }

  private lookup(keys: string[]): WorkloadIdentity {
    for (const key of keys) {
      const identity = this.identities.get(key);
      if (identity) return identity;
    }
    const first = [...this.allBundles.values()][0]!;
    return { svids: [], bundle: first, federatedBundles: new Map() };
  }
}
