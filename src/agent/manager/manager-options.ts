// The agent manager's options, their defaults and why, checked once when the manager is built (a
// bad bound is a config error at start, not a stall later), after rotation-options.ts.
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import type { TrustBundle } from '../../spiffe/bundle.js';
import type { Clock } from '../../spiffe/clock.js';
import { quote, SigilError } from '../../spiffe/errors.js';
import type { TrustDomain } from '../../spiffe/id.js';
import type { JwtSvidCacheLimits } from './jwt-cache.js';
import type { SvidSigner } from './types.js';

const DEFAULT_MAX_SVIDS = 10_000;
const DEFAULT_RENEW_AT_FRACTION = 0.5;
const DEFAULT_SIGN_BATCH_SIZE = 500;
const RANDOM_RANGE = 2 ** 32;

export interface AgentManagerOptions {
  readonly trustDomain: TrustDomain;
  readonly signer: SvidSigner;
  readonly clock: Clock;
  /** Uniform in [0, 1): renewal and retry jitter. Defaults to node:crypto randomness. */
  readonly random?: () => number;
  readonly logger: Logger;
  readonly initialBundle: TrustBundle;
  /**
   * Upper bound on cached X.509-SVIDs (default 10_000); entries beyond it are minted on demand when a
   * workload asks. SVIDs that live workloads hold are never evicted, so those alone may exceed it.
   */
  readonly maxSvids?: number;
  /** SVIDs are renewed when this fraction of their lifetime has passed (default 0.5, ±10% jitter). */
  readonly renewAtFraction?: number;
  /** Max CSRs per SignX509Svids call (default 500). */
  readonly signBatchSize?: number;
  /** Bounds of the JWT-SVID cache (defaults: 10,000 tokens, 16 MiB). */
  readonly jwtSvidCache?: Partial<JwtSvidCacheLimits>;
  /**
   * Called (synchronously; it must be cheap) whenever what exportCache returns has changed: entries,
   * bundles, or X.509-SVIDs minted, renewed, evicted, expired or dropped. Not for JWT-SVIDs.
   */
  readonly onCacheChanged?: () => void;
  /** Called with how many X.509-SVIDs were dropped at their expiry, never renewed in time (metrics). */
  readonly onExpiredDropped?: (count: number) => void;
}

/** The options with every default applied. */
export type ResolvedManagerOptions = Readonly<
  Required<Omit<AgentManagerOptions, 'jwtSvidCache'>> & Pick<AgentManagerOptions, 'jwtSvidCache'>
>;

/** Applies the defaults; throws ERR_CONFIG_INVALID naming the first bound out of range. */
export function resolveManagerOptions(options: AgentManagerOptions): ResolvedManagerOptions {
  const maxSvids = checkPositiveInteger(options.maxSvids ?? DEFAULT_MAX_SVIDS, 'maxSvids');
  const signBatchSize = checkPositiveInteger(
    options.signBatchSize ?? DEFAULT_SIGN_BATCH_SIZE,
    'signBatchSize',
  );
  const renewAtFraction = options.renewAtFraction ?? DEFAULT_RENEW_AT_FRACTION;
  if (!(renewAtFraction > 0 && renewAtFraction < 1)) {
    const problem = `renewAtFraction must be between 0 and 1 (got ${quote(renewAtFraction)})`;
    throw new SigilError('ERR_CONFIG_INVALID', problem, { field: 'renewAtFraction' });
  }
  return {
    ...options,
    random: options.random ?? (() => randomInt(RANDOM_RANGE) / RANDOM_RANGE),
    maxSvids,
    signBatchSize,
    renewAtFraction,
    onCacheChanged: options.onCacheChanged ?? (() => {}),
    onExpiredDropped: options.onExpiredDropped ?? (() => {}),
  };
}

function checkPositiveInteger(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new SigilError('ERR_CONFIG_INVALID', `${field} must be a positive integer (got ${quote(value)})`, {
      field,
    });
  }
  return value;
}
