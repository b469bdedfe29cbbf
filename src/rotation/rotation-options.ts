// The knobs of CA and JWT-key rotation, their defaults and why, checked once. The fractions match
// SPIRE's so operators' expectations carry over; the publish lead and prune grace are ours, because
// we know the agents' refresh interval and track what each authority signed.
import { SigilError } from '../spiffe/errors.js';

export interface RotationOptions {
  /**
   * Fraction of the active authority's lifetime at which the next one is prepared (created and
   * published in the bundle, not yet signing), in (0, activateAtFraction). Defaults to 1/2: half
   * the lifetime (12h of a 24h CA) remains to retry a failed preparation (upstream CA down, disk
   * full), and agents and federated peers get a third of it (8h) to fetch the new bundle.
   */
  readonly prepareAtFraction?: number;
  /**
   * Fraction of the active authority's lifetime at which the prepared one takes over signing, in
   * (prepareAtFraction, 1). Defaults to 5/6: the last sixth (4h of a 24h CA) bounds the longest SVID
   * that is never cut short (see maxSvidTtlMs); activating later would cut more SVIDs, earlier would
   * waste more of each CA's life.
   */
  readonly activateAtFraction?: number;
  /**
   * How often agents and federated peers re-fetch the bundle, in milliseconds. Defaults to 5 minutes:
   * the refresh hint the server publishes and the agents' reconcile interval. Only used to derive
   * minPublishLeadMs.
   */
  readonly bundleRefreshMs?: number;
  /**
   * The least time a prepared authority is in the published bundle before it may sign, in
   * milliseconds. Defaults to 2 × bundleRefreshMs (10 minutes): a consumer that misses one refresh
   * still trusts the new authority before it sees a certificate or token signed by it.
   */
  readonly minPublishLeadMs?: number;
  /**
   * How long an old authority stays in the bundle after the last SVID or token it signed expired,
   * in milliseconds. Defaults to 0: unlike SPIRE, which keeps old keys 24h past their own expiry
   * because it does not track what they signed, our CA journals the last expiry it issued exactly.
   * JWT keys should pass JWT_PRUNE_GRACE_MS, as validators accept tokens a little past `exp`.
   */
  readonly pruneGraceMs?: number;
}

export type ResolvedRotationOptions = Readonly<Required<RotationOptions>>;

export const DEFAULT_PREPARE_AT_FRACTION = 1 / 2;
export const DEFAULT_ACTIVATE_AT_FRACTION = 5 / 6;
/** Matches the bundle's published refresh hint (300s) and the agent's default reconcile_interval. */
const DEFAULT_BUNDLE_REFRESH_MS = 5 * 60_000;
/** Two refreshes: one missed or failed fetch must not leave a consumer without the new authority. */
const PUBLISH_LEAD_REFRESHES = 2;
/**
 * Prune grace for JWT signing keys: JWT-SVID validators (ours, go-spiffe, SPIRE via go-jose) accept
 * a token up to 60s past its `exp`, so its key must stay published that long.
 */
export const JWT_PRUNE_GRACE_MS = 60_000;

/**
 * Applies defaults and checks the options; throws ERR_CONFIG_INVALID naming the first bad option.
 * Idempotent, so a resolved value may be passed wherever RotationOptions are taken.
 */
export function resolveRotationOptions(options: RotationOptions = {}): ResolvedRotationOptions {
  const prepareAtFraction = options.prepareAtFraction ?? DEFAULT_PREPARE_AT_FRACTION;
  const activateAtFraction = options.activateAtFraction ?? DEFAULT_ACTIVATE_AT_FRACTION;
  const bundleRefreshMs = options.bundleRefreshMs ?? DEFAULT_BUNDLE_REFRESH_MS;
  if (!(prepareAtFraction > 0 && prepareAtFraction < 1)) {
    throw invalid('prepareAtFraction', prepareAtFraction, 'must be between 0 and 1, exclusive');
  }
  if (!(activateAtFraction > prepareAtFraction && activateAtFraction < 1)) {
    throw invalid(
      'activateAtFraction',
      activateAtFraction,
      `must be greater than prepareAtFraction (${prepareAtFraction}) and less than 1`,
    );
  }
  if (!(Number.isFinite(bundleRefreshMs) && bundleRefreshMs > 0)) {
    throw invalid('bundleRefreshMs', bundleRefreshMs, 'must be a positive number of milliseconds');
  }
  const minPublishLeadMs = options.minPublishLeadMs ?? PUBLISH_LEAD_REFRESHES * bundleRefreshMs;
  const pruneGraceMs = options.pruneGraceMs ?? 0;
  if (!(Number.isFinite(minPublishLeadMs) && minPublishLeadMs >= 0)) {
    throw invalid('minPublishLeadMs', minPublishLeadMs, 'must be a non-negative number of milliseconds');
  }
  if (!(Number.isFinite(pruneGraceMs) && pruneGraceMs >= 0)) {
    throw invalid('pruneGraceMs', pruneGraceMs, 'must be a non-negative number of milliseconds');
  }
  return Object.freeze({
    prepareAtFraction,
    activateAtFraction,
    bundleRefreshMs,
    minPublishLeadMs,
    pruneGraceMs,
  });
}

function invalid(field: string, value: unknown, rule: string): SigilError {
  return new SigilError('ERR_CONFIG_INVALID', `rotation: ${field} ${rule} (got ${String(value)})`, {
    field,
    reason: 'out-of-range',
  });
}
