// When a workload X509-SVID (or an agent's own SVID) is due for renewal: at a fraction of its
// lifetime, jittered so SVIDs minted together do not all renew in the same second. Pure: the caller
// draws the jitter once, when the SVID is minted, and keeps the result (STYLE §9); nothing here
// reads a clock or arms a timer.
import { SigilError } from '../spiffe/errors.js';

/** The validity window of an SVID, in epoch milliseconds. */
export interface SvidValidity {
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

export interface RenewalOptions {
  /**
   * Fraction of the lifetime after which to renew, in (0, 1]. Defaults to 0.5, as SPIRE: half the
   * lifetime is left to retry through a server outage before the SVID expires.
   */
  readonly fraction?: number;
  /**
   * Spread of the renewal point, as a fraction of it, in [0, 1). Defaults to 0.1 (±10%, as SPIRE's
   * rotationutil), so 10,000 SVIDs minted together renew across a window, not in one burst.
   */
  readonly jitterFraction?: number;
}

const DEFAULT_FRACTION = 0.5;
const DEFAULT_JITTER_FRACTION = 0.1;

/**
 * When to renew an SVID: `fraction` of its lifetime after notBefore, ± `jitterFraction` of that
 * span, rounded to a whole millisecond and clamped into [notBefore, notAfter].
 *
 * Call it once, when the SVID is minted, and keep the result: drawing again on every check (as
 * SPIRE does) skews renewals towards the early edge and ties the spread to the polling interval.
 * `random` returns a number in [0, 1), like Math.random.
 */
export function renewAtMs(validity: SvidValidity, options: RenewalOptions, random: () => number): number {
  const fraction = options.fraction ?? DEFAULT_FRACTION;
  const jitterFraction = options.jitterFraction ?? DEFAULT_JITTER_FRACTION;
  if (!(fraction > 0 && fraction <= 1)) throw invalidOption('fraction', fraction, 'must be in (0, 1]');
  if (!(jitterFraction >= 0 && jitterFraction < 1)) {
    throw invalidOption('jitterFraction', jitterFraction, 'must be in [0, 1)');
  }
  const { notBeforeMs, notAfterMs } = validity;
  const pointMs = Math.max(0, notAfterMs - notBeforeMs) * fraction;
  const jitterMs = (random() * 2 - 1) * jitterFraction * pointMs;
  const atMs = Math.round(notBeforeMs + pointMs + jitterMs);
  return Math.min(notAfterMs, Math.max(notBeforeMs, atMs));
}

/** Whether an SVID whose renewal time is `renewAt` is due at `nowMs` (due at the mark itself). */
export function shouldRenew(nowMs: number, renewAt: number): boolean {
  return nowMs >= renewAt;
}

function invalidOption(field: string, value: number, rule: string): SigilError {
  return new SigilError('ERR_CONFIG_INVALID', `svid renewal: ${field} ${rule} (got ${value})`, {
    field,
    reason: 'out-of-range',
  });
}
