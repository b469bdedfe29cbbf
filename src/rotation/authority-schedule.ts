// When to prepare, activate and prune signing authorities (X.509 CAs and JWT keys alike): pure
// functions of the journaled times and `now`, so a restarted server asks the same questions of the
// journal and gets the answers it would have had without the restart. The CA acts on them
// (journaling before publishing); nothing here creates keys, reads a clock or arms a timer.
import { type RotationOptions, resolveRotationOptions } from './rotation-options.js';

/**
 * What the schedule needs to know about one authority, as the CA journals it. Times are epoch ms.
 * A JWT signing key fits the same shape: its `kid` stays with the owner, its lifetime is
 * notBefore..notAfter, and `lastSignedExpiresAtMs` is the latest `exp` it put in a token.
 */
export interface AuthorityTimes {
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly state: 'prepared' | 'active' | 'old';
  /** When the bundle holding this authority was written (it is journaled before it is published). */
  readonly preparedAtMs?: number;
  readonly activatedAtMs?: number;
  /** The latest expiry of anything it signed; unknown means "up to its own notAfter". */
  readonly lastSignedExpiresAtMs?: number;
}

export interface AuthoritySchedule {
  /** When the successor of this authority should be prepared (created and published, not signing). */
  readonly prepareNextAtMs: number;
  /** When the successor should take over signing. */
  readonly activateNextAtMs: number;
  /** When this authority, once old, may leave the bundle (final once it no longer signs). */
  readonly pruneAtMs: number;
}

/**
 * The thresholds for `authority` as the active one. With `prepared` (its successor, already
 * published) the activation time accounts for when that one was published; without, it assumes
 * the successor is prepared on schedule.
 *
 * - prepare: at prepareAtFraction of the lifetime, or earlier when needed so the successor is
 *   published minPublishLeadMs before the activation mark (short CA TTLs), never before notBefore;
 * - activate: at activateAtFraction, but not before the successor has been published
 *   minPublishLeadMs, and never after this authority expires. When the two conflict, expiry wins:
 *   an expired CA fails every handshake at once, a barely-published one fails only consumers that
 *   have not refreshed yet. A successor whose publish time is unknown waits for that expiry;
 * - prune: when the last SVID or token it signed expired (nothing verifies past the signer's own
 *   notAfter, so that bounds it), plus pruneGraceMs.
 */
export function authoritySchedule(
  authority: AuthorityTimes,
  options: RotationOptions = {},
  prepared?: AuthorityTimes,
): AuthoritySchedule {
  const opts = resolveRotationOptions(options);
  const { notBeforeMs, notAfterMs } = authority;
  const activateMarkMs = markMs(authority, opts.activateAtFraction);
  const prepareNextAtMs = Math.max(
    notBeforeMs,
    Math.min(markMs(authority, opts.prepareAtFraction), activateMarkMs - opts.minPublishLeadMs),
  );
  const publishedAtMs = prepared ? (prepared.preparedAtMs ?? Number.POSITIVE_INFINITY) : prepareNextAtMs;
  const activateNextAtMs = Math.min(
    notAfterMs,
    Math.max(activateMarkMs, publishedAtMs + opts.minPublishLeadMs),
  );
  const lastValidMs = Math.min(authority.lastSignedExpiresAtMs ?? notAfterMs, notAfterMs);
  return { prepareNextAtMs, activateNextAtMs, pruneAtMs: lastValidMs + opts.pruneGraceMs };
}

/**
 * Whether to prepare a successor for `active` now: past the prepare mark and no usable prepared
 * authority (none, or one that expired while the server was down and must be replaced).
 */
export function shouldPrepareNext(
  nowMs: number,
  active: AuthorityTimes,
  prepared?: AuthorityTimes,
  options: RotationOptions = {},
): boolean {
  if (active.state !== 'active') return false;
  if (prepared && isUsable(nowMs, prepared)) return false;
  return nowMs >= authoritySchedule(active, options).prepareNextAtMs;
}

/**
 * Whether `prepared` should replace `active` as the signer now (see authoritySchedule for when).
 * Never for a prepared authority that has itself expired: the owner prepares a fresh one.
 */
export function shouldActivateNext(
  nowMs: number,
  active: AuthorityTimes,
  prepared: AuthorityTimes,
  options: RotationOptions = {},
): boolean {
  if (active.state !== 'active' || prepared.state !== 'prepared') return false;
  if (!isUsable(nowMs, prepared)) return false;
  return nowMs >= authoritySchedule(active, options, prepared).activateNextAtMs;
}

/** Whether an old authority may leave the bundle now. Never true for an active or prepared one. */
export function shouldPrune(nowMs: number, old: AuthorityTimes, options: RotationOptions = {}): boolean {
  return old.state === 'old' && nowMs >= authoritySchedule(old, options).pruneAtMs;
}

/**
 * The instant `fraction` of the lifetime has passed, to the nearest millisecond: rounding absorbs
 * float noise (5/6 of 24h computes as 72000000.00000001 ms) and matches maxSvidTtlMs exactly.
 */
function markMs(authority: AuthorityTimes, fraction: number): number {
  return authority.notBeforeMs + Math.round((authority.notAfterMs - authority.notBeforeMs) * fraction);
}

function isUsable(nowMs: number, authority: AuthorityTimes): boolean {
  return nowMs < authority.notAfterMs;
}
