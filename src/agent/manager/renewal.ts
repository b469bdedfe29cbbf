// Pure timing decisions for the SVID cache (STYLE §9): when an SVID is due for renewal, whether an
// entry change needs a new SVID, and how long to wait after a failure. The manager acts on them.
import { renewAtMs as sharedRenewAtMs } from '../../rotation/index.js';
import { Backoff } from '../../spiffe/backoff.js';
import type { AgentEntry } from './types.js';

/** Renewal times spread ±10% around the renewal point, so SVIDs minted together do not renew together. */
const RENEW_JITTER_FRACTION = 0.1;
/** First retry after a failed mint; doubles per consecutive failure. */
export const BASE_RETRY_DELAY_MS = 1_000;
/** Retries never wait longer than this: a recovered server should be used within half a minute. */
export const MAX_RETRY_DELAY_MS = 30_000;
const RETRY_BACKOFF = Backoff.create({ initialMs: BASE_RETRY_DELAY_MS, maxMs: MAX_RETRY_DELAY_MS });

/** When to renew an SVID: the shared rule of src/rotation (fraction of its life, ±10% drawn once). */
export function renewAtMs(
  notBeforeMs: number,
  notAfterMs: number,
  fraction: number,
  random: () => number,
): number {
  return sharedRenewAtMs(
    { notBeforeMs, notAfterMs },
    { fraction, jitterFraction: RENEW_JITTER_FRACTION },
    random,
  );
}

/**
 * The entry fields an X509-SVID encodes or was sized by. A change to any of them needs a new SVID;
 * anything else (hint, admin, selectors, revision) is metadata and must not cost a mint.
 */
export function svidFieldsKey(entry: AgentEntry): string {
  return JSON.stringify([entry.spiffeId, entry.dnsNames, entry.x509SvidTtlMs]);
}

/**
 * Delay before retry number `attempt` (1 = first retry): exponential from 1 s, capped at 30 s, with
 * "equal jitter": half fixed so retries never bunch at zero, half random so agents do not retry in step.
 */
export function retryDelayMs(attempt: number, random: () => number): number {
  return Math.round(RETRY_BACKOFF.afterFailures(attempt - 1).delayMs(random));
}
