// Which cached X.509-SVIDs must be replaced for trust's sake: their chain no longer leads to an
// authority of the own bundle (its CA was rotated away), or passes through one the server says is
// tainted. It only marks them: the manager mints replacements (mint-plan.ts) and serves the old ones
// meanwhile, as after any rotation.
import type { TrustBundle } from '../../spiffe/bundle.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import { type SvidCache, signedThrough } from './svid-cache.js';

export class SvidTrust {
  private taintedIds: ReadonlySet<string> = new Set();
  private untrustedIds = new Set<string>();

  /** Subject key IDs (hex) of tainted X.509 authorities, as the server last said. */
  get tainted(): ReadonlySet<string> {
    return this.taintedIds;
  }

  /** Entries whose SVID must be replaced. */
  get untrusted(): ReadonlySet<string> {
    return this.untrustedIds;
  }

  /** Takes the server's tainted set; false when it has the same members as before. */
  setTainted(ids: ReadonlySet<string>): boolean {
    if (ids.size === this.taintedIds.size && [...ids].every((id) => this.taintedIds.has(id))) return false;
    this.taintedIds = new Set(ids);
    return true;
  }

  /** The entry's SVID was replaced, or it has none any more. */
  forget(entryId: string): void {
    this.untrustedIds.delete(entryId);
  }

  /** Marks for replacement every SVID that no longer chains to a trusted, untainted authority. */
  recheck(bundle: TrustBundle, svids: SvidCache): void {
    // A tainted authority counts as absent: whatever it signed is replaced, as if rotated away.
    const trusted = bundle.x509Authorities.filter(
      (der) => !this.taintedIds.has(describeCertificate(der).subjectKeyIdHex ?? ''),
    );
    this.untrustedIds = new Set([
      ...svids.reanchor(trusted),
      ...signedThrough(svids.values(), this.taintedIds),
    ]);
  }
}
