// TLS material that changes while connections stay up (SVID renewal, CA rotation). It speaks the
// CertificateProvider listener protocol of @grpc/grpc-js structurally, so gRPC servers and channels
// pick up new material for new handshakes without being rebuilt; nothing here imports gRPC.
export interface TlsIdentity {
  /** PEM chain, leaf first. */
  readonly certificate: Buffer;
  /** PEM PKCS#8. */
  readonly privateKey: Buffer;
}

type CaListener = (update: { caCertificate: Buffer } | null) => void;
type IdentityListener = (update: TlsIdentity | null) => void;

export class TlsMaterial {
  private ca: Buffer | null = null;
  private identity: TlsIdentity | null = null;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  /** Trusted CA certificates, PEM. */
  setCa(pem: Buffer | string): void {
    this.ca = Buffer.from(pem);
    for (const listener of this.caListeners) listener({ caCertificate: this.ca });
  }

  setIdentity(identity: TlsIdentity): void {
    this.identity = identity;
    for (const listener of this.identityListeners) listener(identity);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // Deliver the current value on a later tick: grpc-js registers its own watcher only after
    // adding this listener, and would miss a value delivered synchronously (then refusing every
    // connection as "credentials not loaded").
    queueMicrotask(() => {
      if (this.ca && this.caListeners.has(listener)) listener({ caCertificate: this.ca });
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.identity && this.identityListeners.has(listener)) listener(this.identity);
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}
