// Which of the workload's X.509-SVIDs the sidecar presents when its config names one (`spiffe_id`).
// A workload entitled to several identities gets all of them from the Workload API, as SPIRE hands
// them out (hints tell them apart), and go-spiffe lets the caller pick; this is that picker. It only
// decides and logs; TLS contexts are built by identity.ts. Until the configured ID is offered the
// proxy waits, not ready. Once held, an SVID whose ID later drops out of the updates is kept until
// it expires, just as the whole context is kept when the Workload API fails: a passing entry edit
// must not cut traffic, and an expired SVID then fails handshakes loudly on both sides.
import { quote, SigilError } from '../spiffe/errors.js';
import type { ProxyLogger } from './logger.js';

/** What the choice reads of an SVID; the SDK's X509Svid has these. */
export interface OfferedSvid {
  readonly spiffeId: { toString(): string };
  /** The leaf's notAfter, in ms since the epoch. */
  readonly expiresAtMs: number;
}

/** What `whenOffered` needs from an X509Source. */
export interface OfferingSource<T extends OfferedSvid> {
  getContext(): { readonly svids: readonly T[] };
  on(event: 'update', listener: () => void): unknown;
  off(event: 'update', listener: () => void): unknown;
}

export class SvidChoice<T extends OfferedSvid> {
  private held: T | undefined;
  /** The offered IDs last logged as lacking ours; null while ours is offered. Logs once per change. */
  private missingFrom: string | null = null;

  constructor(
    /** The configured `spiffe_id`, normalized. */
    readonly wanted: string,
    private readonly logger: Pick<ProxyLogger, 'info' | 'warn'>,
  ) {}

  /** The SVID to use among `svids` (X509Source's `pickSvid`): ours, or the one last held. */
  readonly pick = (svids: readonly T[]): T => {
    const chosen = this.observe(svids);
    if (chosen === undefined) {
      throw new SigilError(
        'ERR_UNAVAILABLE',
        `proxy: the Workload API offers no SVID for spiffe_id ${quote(this.wanted)}`,
        { field: 'spiffe_id', reason: 'not-offered' },
      );
    }
    return chosen;
  };

  /** Resolves once `source` has offered the wanted ID: at once when it already has. */
  whenOffered(source: OfferingSource<T>): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.observe(source.getContext().svids) === undefined) return;
        source.off('update', check);
        resolve();
      };
      source.on('update', check);
      check();
    });
  }

  /** Takes in one update: holds our SVID when offered, logs when the offered set lacks it. */
  private observe(svids: readonly T[]): T | undefined {
    const match = svids.find((svid) => svid.spiffeId.toString() === this.wanted);
    if (match !== undefined) {
      if (this.missingFrom !== null)
        this.logger.info({ spiffeId: this.wanted }, 'Configured spiffe_id offered');
      this.missingFrom = null;
      this.held = match;
      return match;
    }
    const offered = svids.map((svid) => svid.spiffeId.toString()).sort();
    const key = offered.join(' ');
    if (key !== this.missingFrom) {
      this.missingFrom = key;
      if (this.held === undefined) {
        this.logger.warn(
          { spiffeId: this.wanted, offered },
          'Configured spiffe_id is not among the SVIDs the Workload API offers; not ready until it is',
        );
      } else {
        this.logger.warn(
          { spiffeId: this.wanted, offered, keptUntil: new Date(this.held.expiresAtMs).toISOString() },
          'Configured spiffe_id is no longer offered; keeping its last SVID until it expires',
        );
      }
    }
    return this.held;
  }
}
