// The server's own X.509-SVID (spiffe://<td>/sigil/server), presented by the agent API and the mTLS
// admin listener. Re-minted at half its life, and at once when the authority that signed it is
// tainted (agents then re-sync and see a server certificate from the active CA, and the tainted one
// can be revoked); listeners pick the new one up for new handshakes.
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { bundleToPem, type TrustBundle } from '../spiffe/bundle.js';
import type { Clock } from '../spiffe/clock.js';
import { generateKey } from '../spiffe/keys.js';
import { encodePem } from '../spiffe/pem.js';
import { TlsMaterial } from '../spiffe/tls-material.js';
import type { IssuedX509Svid } from './ca/svid-signer.js';

/** What the server identity needs from the CA: its own SVID (with the server marker) and the bundle. */
export interface ServerSvidSource {
  bundle(): TrustBundle;
  signServerSvid(params: { publicKey: KeyObject; ttlMs: number }): IssuedX509Svid;
  /** IDs of tainted X.509 authorities: an SVID one of them signed is replaced at once. */
  taintedX509Authorities(): readonly string[];
}

export class ServerIdentity {
  /** Identity = our SVID; CA = our bundle's X.509 authorities (what agent SVIDs chain to). */
  readonly material = new TlsMaterial();
  private cancelRenewal: () => void = () => {};
  private readonly listeners = new Set<() => void>();
  private current!: { key: string; cert: string; expiresAtMs: number; authorityId: string };

  constructor(
    private readonly ca: ServerSvidSource,
    private readonly ttlMs: number,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.renew();
  }

  /** For node:tls / https servers. */
  tlsOptions(): { key: string; cert: string } {
    return { key: this.current.key, cert: this.current.cert };
  }

  onRenewed(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Call when the bundle changed so client certificates chaining to a new CA are accepted; re-mints
   * our SVID when its authority was tainted (a taint is published as a bundle write).
   */
  refreshTrust(): void {
    if (this.ca.taintedX509Authorities().includes(this.current.authorityId)) {
      this.logger.warn(
        { authorityId: this.current.authorityId },
        'Server SVID signed by a tainted authority; re-minting',
      );
      this.renew();
      return;
    }
    this.material.setCa(bundleToPem(this.ca.bundle()));
  }

  close(): void {
    this.cancelRenewal();
  }

  private renew(): void {
    this.cancelRenewal();
    const key = generateKey('ec-p256');
    const issued = this.ca.signServerSvid({ publicKey: key, ttlMs: this.ttlMs });
    this.current = {
      key: key.export({ format: 'pem', type: 'pkcs8' }) as string,
      cert: issued.chain.map((der) => encodePem('CERTIFICATE', der)).join(''),
      expiresAtMs: issued.expiresAtMs,
      authorityId: issued.authorityId,
    };
    this.material.setIdentity({
      certificate: Buffer.from(this.current.cert),
      privateKey: Buffer.from(this.current.key),
    });
    this.material.setCa(bundleToPem(this.ca.bundle()));
    for (const listener of this.listeners) listener();
    this.logger.info(
      { expiresAt: new Date(issued.expiresAtMs).toISOString(), authorityId: issued.authorityId },
      'Server SVID minted',
    );
    this.cancelRenewal = this.clock.setTimer((issued.expiresAtMs - this.clock.nowMs()) / 2, () =>
      this.renew(),
    );
  }
}
