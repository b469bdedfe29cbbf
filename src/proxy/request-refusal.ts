// Requests refused before they are authorized, because the app could read them differently from
// the policy: a target normalize.ts refuses, or more than one Host field (RFC 9112 §3.2: the proxy
// and the app could each pick a different one). One wording, status and set of log fields for every
// listener that checks them; the listener counts, logs and answers. Pure, and free on the path of a
// request that is not refused: nothing is allocated unless it is.
import { REFUSAL_STATUS } from './errors.js';
import type { RefusalReason } from './guard.js';
import type { NormalizedTarget, PathRefusalReason } from './policy/normalize.js';

export interface RequestRefusal {
  /** Also the `x-sigil-error` value and the refusal metric's label. */
  readonly reason: RefusalReason;
  readonly status: number;
  /** What was wrong, for the log and, after "sigil proxy: ", for the client. */
  readonly message: string;
  /** What `guard.refused` logs after who asked and the method. */
  readonly fields: { readonly err: string; readonly path_refusal?: PathRefusalReason };
}

/** A target that requestRefusal let through: one that normalized. */
export type AdmittedTarget = Extract<NormalizedTarget, { readonly ok: true }>;

/**
 * Why a request must be refused, or null; null means `target`, if any, is an AdmittedTarget.
 * `target` is undefined where the listener does not normalize (outbound: the upstream sidecar
 * does) or there is no path; `filtered` where there are no Host fields to count (HTTP/2 has one
 * `:authority`). A path refusal comes first.
 */
export function requestRefusal(
  target: NormalizedTarget | undefined,
  filtered: { readonly hostCount: number } | undefined,
): RequestRefusal | null {
  if (target !== undefined && !target.ok) {
    return {
      reason: 'bad-path',
      status: REFUSAL_STATUS['bad-path'],
      message: target.message,
      fields: { err: target.message, path_refusal: target.reason },
    };
  }
  if (filtered !== undefined && filtered.hostCount > 1) {
    const message = `request has ${filtered.hostCount} Host header fields; one is allowed`;
    return {
      reason: 'duplicate-host',
      status: REFUSAL_STATUS['duplicate-host'],
      message,
      fields: { err: message },
    };
  }
  return null;
}
