// Signs SVIDs with the CA's active authorities (ServerCa decides which those are). Two surfaces, kept
// apart on purpose: workload SVIDs (signX509Svid, signCsr, mintJwtSvid) refuse Sigil's reserved
// /sigil namespace whatever the caller passes, and the server's and agents' own SVIDs come only from
// signServerSvid and signAgentSvid, which take no ID from anyone. So no API path that hands over an
// operator's or agent's ID can produce the server's identity, today or after a future change.
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../../spiffe/clock.js';
import { quote, SigilError } from '../../spiffe/errors.js';
import type { SpiffeId, TrustDomain } from '../../spiffe/id.js';
import { mintJwtSvid } from '../../spiffe/jwt-svid.js';
import { checkNotReserved, isAgentSpiffeId, serverSpiffeId } from '../../spiffe/sigil-ids.js';
import { mintX509Svid, type ParsedCsr, parseCsr, type X509Issuer } from '../../spiffe/x509-svid.js';
import { BACKDATE_MS } from './authority-factory.js';

export interface IssuedX509Svid {
  /** Leaf first, then any intermediates up to (not including) the bundle's root. */
  readonly chain: readonly Buffer[];
  readonly expiresAtMs: number;
  /** ID (subject key ID) of the X.509 authority that signed the leaf. */
  readonly authorityId: string;
}

/** The authorities signing right now. */
export interface ActiveSigners {
  readonly x509: {
    readonly id: string;
    readonly notAfterMs: number;
    readonly issuer: X509Issuer;
    /** Our CA certificate and its upstream chain when the bundle root is not our CA; else empty. */
    readonly chainTail: readonly Buffer[];
  };
  readonly jwt: { readonly kid: string; readonly notAfterMs: number; readonly key: KeyObject };
}

export interface SvidSignerOptions {
  readonly trustDomain: TrustDomain;
  readonly clock: Clock;
  readonly defaultX509SvidTtlMs: number;
  readonly defaultJwtSvidTtlMs: number;
}

interface X509Request {
  readonly spiffeId: SpiffeId;
  readonly publicKey: KeyObject | Buffer;
  readonly dnsNames?: readonly string[];
  /** 0 or absent: the default TTL. Always capped at the signing CA's notAfter. */
  readonly ttlMs?: number;
}

export class SvidSigner {
  private active: ActiveSigners | undefined;
  /** Latest expiry signed by each authority activated in this process (rotation prunes on it). */
  private readonly lastSigned = new Map<string, number>();

  constructor(private readonly options: SvidSignerOptions) {}

  /** Signs with `signers` from now on. */
  use(signers: ActiveSigners): void {
    this.active = signers;
  }

  get signers(): ActiveSigners {
    if (this.active === undefined) {
      throw new SigilError('ERR_CA_UNAVAILABLE', 'the CA has no active authority yet');
    }
    return this.active;
  }

  /** From now on every expiry `authorityId` signs is tracked exactly (it was activated by this process). */
  track(authorityId: string): void {
    this.lastSigned.set(authorityId, 0);
  }

  /**
   * The latest expiry `authorityId` signed, or undefined when it was activated before this process:
   * what it signed before the restart is unknown, so what it signs now must not pass for exact.
   */
  lastSignedExpiresAtMs(authorityId: string): number | undefined {
    return this.lastSigned.get(authorityId);
  }

  /** A workload X509-SVID for `publicKey`. Throws ERR_SPIFFE_ID_RESERVED for Sigil's own namespace. */
  signX509Svid(params: X509Request): IssuedX509Svid {
    checkNotReserved(params.spiffeId, 'spiffe_id');
    return this.issueX509(params, false);
  }

  /** Verifies a PKCS#10 CSR's self-signature, then signs its key only (its names and extensions are ignored). */
  signCsr(params: Omit<X509Request, 'publicKey'> & { readonly csr: Buffer | string }): IssuedX509Svid {
    checkNotReserved(params.spiffeId, 'spiffe_id');
    return this.issueX509({ ...params, publicKey: parseCsr(params.csr).spkiDer }, false);
  }

  /** A workload JWT-SVID. Throws ERR_SPIFFE_ID_RESERVED for Sigil's own namespace. */
  mintJwtSvid(params: { spiffeId: SpiffeId; audience: readonly string[]; ttlMs?: number }): {
    token: string;
    expiresAtMs: number;
  } {
    checkNotReserved(params.spiffeId, 'spiffe_id');
    const nowMs = this.options.clock.nowMs();
    const { kid, notAfterMs, key } = this.signers.jwt;
    const cappedMs = Math.min(nowMs + (params.ttlMs || this.options.defaultJwtSvidTtlMs), notAfterMs);
    // JWT claims are whole seconds: round down so exp never lands past the key's expiry.
    const expiresAtMs = Math.floor(cappedMs / 1000) * 1000;
    const token = mintJwtSvid({
      spiffeId: params.spiffeId,
      audience: params.audience,
      issuedAtMs: nowMs,
      expiresAtMs,
      key,
      kid,
    });
    this.noteSigned(kid, expiresAtMs);
    return { token, expiresAtMs };
  }

  /** The server's own SVID (spiffe://<td>/sigil/server), carrying the server marker extension. */
  signServerSvid(params: { publicKey: KeyObject; ttlMs: number }): IssuedX509Svid {
    return this.issueX509({ ...params, spiffeId: serverSpiffeId(this.options.trustDomain) }, true);
  }

  /**
   * An agent's SVID for the key of its CSR, after attestation or for renewal; `agentId` must be under
   * /sigil/agent/. The caller parses the CSR (parseCsr verifies its self-signature) before anything
   * else, so that a bad one is refused first and read once.
   */
  signAgentSvid(params: { csr: ParsedCsr; agentId: SpiffeId; ttlMs: number }): IssuedX509Svid {
    if (!isAgentSpiffeId(params.agentId, this.options.trustDomain)) {
      throw new SigilError(
        'ERR_PERMISSION_DENIED',
        `${quote(params.agentId.toString())} is not an agent ID of "${this.options.trustDomain.name}"`,
        { field: 'spiffe_id', reason: 'not-agent' },
      );
    }
    return this.issueX509(
      { spiffeId: params.agentId, publicKey: params.csr.spkiDer, ttlMs: params.ttlMs },
      false,
    );
  }

  private issueX509(params: X509Request, isSigilServer: boolean): IssuedX509Svid {
    const nowMs = this.options.clock.nowMs();
    const { id, notAfterMs: caNotAfterMs, issuer, chainTail } = this.signers.x509;
    const notAfterMs = Math.min(nowMs + (params.ttlMs || this.options.defaultX509SvidTtlMs), caNotAfterMs);
    const leaf = mintX509Svid(
      {
        spiffeId: params.spiffeId,
        publicKey: params.publicKey,
        dnsNames: params.dnsNames ?? [],
        notBeforeMs: nowMs - BACKDATE_MS,
        notAfterMs,
        isSigilServer,
      },
      issuer,
    );
    this.noteSigned(id, notAfterMs);
    return { chain: [leaf, ...chainTail], expiresAtMs: notAfterMs, authorityId: id };
  }

  private noteSigned(id: string, expiresAtMs: number): void {
    // Only authorities tracked since their activation: recording one activated before a restart
    // would make its partial maximum look exact, and rotation would prune it too early.
    const last = this.lastSigned.get(id);
    if (last !== undefined && last < expiresAtMs) this.lastSigned.set(id, expiresAtMs);
  }
}
