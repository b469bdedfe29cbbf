// The sidecar's own identity as TLS needs it: one prebuilt server context and one client context,
// rebuilt from the X509Source on every update and swapped in place, so new handshakes present the
// new SVID while open connections carry on. Peers are checked here, not by OpenSSL: OpenSSL would
// verify against every CA it was given at once, and SPIFFE requires the bundle of the peer's OWN
// trust domain (spiffe-facts.md §2.2). This module does not listen or connect.
import type { KeyObject } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { TrustBundle } from '../spiffe/bundle.js';
import { type Clock, systemClock } from '../spiffe/clock.js';
import { SigilError } from '../spiffe/errors.js';
import type { TrustDomain } from '../spiffe/id.js';
import { encodePem } from '../spiffe/pem.js';
import { describeCertificate, verifyX509Svid } from '../spiffe/x509-svid.js';

/** What the proxy needs from an X509Source (src/sdk); a fake is an EventEmitter with these two getters. */
export interface IdentitySource {
  getSvid(): {
    readonly spiffeId: { toString(): string };
    /** DER, leaf first. */
    readonly certificates: readonly Buffer[];
    readonly privateKey: KeyObject;
  };
  getContext(): { readonly bundles: ReadonlyMap<string, TrustBundle> };
  on(event: 'update', listener: () => void): unknown;
  off(event: 'update', listener: () => void): unknown;
}

export interface ProxyIdentityOptions {
  /** Validity checks of peer certificates run at `clock.nowMs()`. Defaults to the system clock. */
  clock?: Clock;
  /** Upper bound on how long a TLS session ticket stays resumable, in seconds. Defaults to 300. */
  maxSessionTimeoutS?: number;
  /** An update that could not become a TLS context; the previous SVID stays in use. Defaults to ignoring it. */
  onError?: (err: unknown) => void;
}

export interface VerifiedPeer {
  readonly spiffeId: string;
  /** The peer leaf's notAfter, in ms since the epoch: a cached session must not outlive it. */
  readonly expiresAtMs: number;
  /** SHA-256 of the peer leaf DER, lowercase hex (the XFCC `Hash`). */
  readonly leafSha256Hex: string;
}

/** Node's own default ticket lifetime; short enough that a revoked peer cannot resume for long. */
const DEFAULT_MAX_SESSION_TIMEOUT_S = 300;
/**
 * Server tickets for one context share this ID context; OpenSSL refuses to resume sessions on a
 * server without one ("session id context uninitialized"), and tls.Server would set it for us.
 */
const SESSION_ID_CONTEXT = 'sigil-proxy';
/** Verified chains remembered at most; a sidecar sees few distinct peer SVIDs at a time. */
const MAX_VERIFIED_CHAINS = 1_024;

interface VerifiedChain {
  readonly peer: VerifiedPeer;
  /** Every certificate on the verified path (authority included) is valid from… */
  readonly validFromMs: number;
  /** …until (exclusive). Outside this window the chain is verified again, and then fails. */
  readonly validUntilMs: number;
}

export class ProxyIdentity {
  private server!: SecureContext;
  private client!: SecureContext;
  private ownId!: string;
  private generationCount = 0;
  private readonly listeners = new Set<() => void>();
  /**
   * Chains verified under the current bundles, by their bytes. A peer opens many connections with
   * one SVID (a pool filling up after a lull: dozens at once), and each full verification parses
   * every certificate again. Emptied on every source update, since bundles may have changed.
   */
  private readonly verifiedChains = new Map<string, VerifiedChain>();
  private readonly clock: Clock;
  private readonly maxSessionTimeoutS: number;
  private readonly onSourceUpdate: () => void;

  constructor(
    private readonly source: IdentitySource,
    options: ProxyIdentityOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.maxSessionTimeoutS = options.maxSessionTimeoutS ?? DEFAULT_MAX_SESSION_TIMEOUT_S;
    this.rebuild();
    const onError = options.onError ?? (() => {});
    this.onSourceUpdate = () => {
      try {
        this.rebuild();
      } catch (err) {
        // Thrown into the source's emit it would end its watch; the old contexts stay valid instead.
        onError(err);
      }
    };
    source.on('update', this.onSourceUpdate);
  }

  /** Our SPIFFE ID as of the latest update. */
  get spiffeId(): string {
    return this.ownId;
  }

  /** The context every inbound handshake uses; read it per connection, it changes on rotation. */
  get serverContext(): SecureContext {
    return this.server;
  }

  /** The context every outbound handshake uses; read it per connection, it changes on rotation. */
  get clientContext(): SecureContext {
    return this.client;
  }

  /** Bumped on each update; session caches keyed by it drop tickets issued under an old SVID. */
  get generation(): number {
    return this.generationCount;
  }

  /** Calls `listener` after each swap. Returns a function that stops it. */
  onUpdate(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Verifies a peer's X509-SVID chain (DER, leaf first) against the bundle of the peer's own trust
   * domain, at the clock's now. Throws ERR_UNAUTHENTICATED (no certificate), ERR_X509_SVID_INVALID,
   * ERR_BUNDLE_NOT_FOUND (a trust domain we do not federate with) or ERR_X509_VERIFY_FAILED
   * (expired, unknown CA, bad signature); `reason` on each is short enough for a metric label.
   */
  verifyPeer(chain: readonly Buffer[]): VerifiedPeer {
    if (chain.length === 0) {
      throw new SigilError('ERR_UNAUTHENTICATED', 'proxy: the peer presented no certificate', {
        reason: 'no-certificate',
      });
    }
    const nowMs = this.clock.nowMs();
    // Length-prefixed, so no two different chains can share a key.
    const key = chain.map((der) => `${der.length}:${der.toString('latin1')}`).join('');
    const known = this.verifiedChains.get(key);
    if (known !== undefined && nowMs >= known.validFromMs && nowMs < known.validUntilMs) return known.peer;
    const bundles = this.source.getContext().bundles;
    const verified = verifyX509Svid(chain, (td: TrustDomain) => bundles.get(td.name)?.x509Authorities, nowMs);
    const path = verified.chain.map((der) => describeCertificate(der));
    const leaf = path[0]!;
    const peer: VerifiedPeer = {
      spiffeId: verified.spiffeId.toString(),
      expiresAtMs: leaf.notAfterMs,
      leafSha256Hex: leaf.fingerprintSha256Hex,
    };
    if (this.verifiedChains.size >= MAX_VERIFIED_CHAINS) this.verifiedChains.clear();
    this.verifiedChains.set(key, {
      peer,
      validFromMs: Math.max(...path.map((c) => c.notBeforeMs)),
      validUntilMs: Math.min(...path.map((c) => c.notAfterMs)),
    });
    return peer;
  }

  /** Stops following the source; contexts already handed out keep working. */
  close(): void {
    this.source.off('update', this.onSourceUpdate);
    this.listeners.clear();
  }

  private rebuild(): void {
    const svid = this.source.getSvid();
    const leaf = describeCertificate(svid.certificates[0]!);
    const remainingS = Math.floor((leaf.notAfterMs - this.clock.nowMs()) / 1000);
    const material: SecureContextOptions = {
      key: svid.privateKey.export({ type: 'pkcs8', format: 'pem' }),
      cert: svid.certificates.map((der) => encodePem('CERTIFICATE', der)).join(''),
      minVersion: 'TLSv1.2',
    };
    // Both contexts are built before either is published, so a failure leaves the old pair intact.
    const server = createSecureContext({
      ...material,
      // A ticket must not outlive the SVID it was issued under; a new context also brings fresh
      // ticket keys, so tickets from before a rotation stop resuming.
      sessionTimeout: Math.max(1, Math.min(this.maxSessionTimeoutS, remainingS)),
      sessionIdContext: SESSION_ID_CONTEXT,
    } as SecureContextOptions);
    const client = createSecureContext(material);
    this.server = server;
    this.client = client;
    this.ownId = svid.spiffeId.toString();
    this.generationCount++;
    this.verifiedChains.clear();
    for (const listener of this.listeners) listener();
  }
}

/** The peer chain of a TLS socket as DER, leaf first (empty when the peer sent no certificate). */
export function peerChainOf(socket: {
  getPeerCertificate(detailed: true): { raw?: Buffer; issuerCertificate?: unknown };
}): Buffer[] {
  const chain: Buffer[] = [];
  type Node = { raw?: Buffer; issuerCertificate?: Node };
  let node: Node | undefined = socket.getPeerCertificate(true) as Node;
  const seen = new Set<Node>();
  // Node links the chain through issuerCertificate and ends a self-signed root by pointing at itself.
  while (node?.raw !== undefined && !seen.has(node)) {
    seen.add(node);
    chain.push(node.raw);
    node = node.issuerCertificate;
  }
  return chain;
}
