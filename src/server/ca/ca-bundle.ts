// Publishes the trust bundle of our own trust domain, built from the CA journal: the X.509
// authorities (or the upstream roots) and the JWT keys. The sequence moves on only when the content
// changed, so consumers comparing sequences do not refetch for nothing.
import { createPublicKey } from 'node:crypto';
import {
  createTrustBundle,
  encodeSpiffeBundle,
  parseSpiffeBundle,
  type TrustBundle,
} from '../../spiffe/bundle.js';
import type { Clock } from '../../spiffe/clock.js';
import type { TrustDomain } from '../../spiffe/id.js';
import { decodePemBlocks } from '../../spiffe/pem.js';
import type { BundleStore } from '../datastore/types.js';
import type { CaJournal } from './journal.js';
import type { UpstreamAuthority } from './upstream.js';

/** How often consumers should re-fetch the bundle (SPIFFE federation default, 5 minutes). */
export const BUNDLE_REFRESH_HINT_S = 300;

export interface BundlePublisherOptions {
  readonly store: BundleStore;
  readonly trustDomain: TrustDomain;
  readonly upstream: UpstreamAuthority | null;
  readonly clock: Clock;
}

/**
 * Writes the bundle for `journal` (sequence + 1 when its content changed). `adopt` receives it
 * before the write, because the write's observers read the CA's current bundle.
 */
export async function publishBundle(
  options: BundlePublisherOptions,
  journal: CaJournal,
  adopt: (bundle: TrustBundle) => void,
): Promise<void> {
  const { store, trustDomain, upstream, clock } = options;
  const x509Authorities = upstream
    ? [...upstream.roots]
    : journal.x509.map((a) => decodePemBlocks(a.certPem, 'CERTIFICATE', 'ca journal')[0]!);
  const jwtAuthorities = journal.jwt.map((a) => ({
    kid: a.id,
    publicKey: createPublicKey(a.publicKeyPem),
    expiresAtMs: a.notAfterMs,
  }));
  const stored = await store.fetchBundle(trustDomain.name);
  const previous = stored ? parseSpiffeBundle(stored.bundleJson, trustDomain) : null;
  const candidate = createTrustBundle({
    trustDomain,
    x509Authorities,
    jwtAuthorities,
    sequence: previous?.sequence ?? 0,
    refreshHintS: BUNDLE_REFRESH_HINT_S,
  });
  const unchanged = previous !== null && encodeSpiffeBundle(previous) === encodeSpiffeBundle(candidate);
  const next = unchanged
    ? previous
    : createTrustBundle({ ...candidate, sequence: (previous?.sequence ?? 0) + 1 });
  adopt(next);
  // Written even when unchanged: the write is what tells agent streams to look again (a taint
  // changes no certificate, yet agents must hear of it).
  await store.putBundle({
    trustDomain: trustDomain.name,
    bundleJson: encodeSpiffeBundle(next),
    sequence: next.sequence,
    updatedAtMs: clock.nowMs(),
  });
}
