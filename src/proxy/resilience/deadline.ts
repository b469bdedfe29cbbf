// Deadline propagation. The outbound side stamps every request with `x-sigil-deadline`, the absolute
// time (Unix epoch milliseconds) by which the whole call must be over; the inbound side of the next
// sidecar reads it, refuses a request whose deadline has already passed, and hands it to its app,
// which forwards it (as it forwards trace headers) on the calls it makes while serving the request.
// The app's outbound sidecar then caps those calls at what is left. Absolute rather than relative
// (gRPC's `grpc-timeout`) so the time the app spends is subtracted without the app doing anything;
// the price is that sidecars on different hosts need synchronized clocks (as Finagle's deadlines do):
// a skew of S shortens or lengthens the remaining budget by S, and never extends a call past its
// own configured timeout, which always applies too. `grpc-timeout` is honoured as well.

import type { RequestContext } from './exchange.js';

export const DEADLINE_HEADER = 'x-sigil-deadline';
/** Which try of a request this is (1, 2, …), set on every request the outbound side may retry. */
export const ATTEMPT_HEADER = 'x-sigil-attempt';

/** Up to 15 digits: any epoch-ms date before the year 33658, and nothing a Number cannot hold exactly. */
const EPOCH_MS = /^\d{1,15}$/;
/** gRPC's TimeoutValue is at most 8 digits followed by a unit (gRPC over HTTP/2 spec). */
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const GRPC_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/** The deadline an `x-sigil-deadline` value names, in epoch ms; null when absent or malformed (ignored, never trusted). */
export function parseDeadline(value: string | undefined): number | null {
  if (value === undefined) return null;
  const trimmed = value.trim();
  return EPOCH_MS.test(trimmed) ? Number(trimmed) : null;
}

/** The deadline a `grpc-timeout` value sets when received at `nowMs`; null when absent or malformed. */
export function grpcDeadline(value: string | undefined, nowMs: number): number | null {
  if (value === undefined) return null;
  const match = GRPC_TIMEOUT.exec(value.trim());
  if (match === null) return null;
  return nowMs + Number(match[1]) * GRPC_UNIT_MS[match[2]!]!;
}

/**
 * Sets the deadline of an outbound request in `context`: the earliest of its own timeout (0 = none)
 * and what the caller's propagated fields allow; Infinity when nothing bounds it.
 */
export function applyDeadline(
  context: Pick<RequestContext, 'deadlineAtMs' | 'deadlineFromCaller'>,
  nowMs: number,
  requestTimeoutMs: number,
  deadlineValue: string | undefined,
  grpcTimeoutValue: string | undefined,
): void {
  let deadline = requestTimeoutMs > 0 ? nowMs + requestTimeoutMs : Number.POSITIVE_INFINITY;
  let fromCaller = false;
  const propagated = parseDeadline(deadlineValue);
  if (propagated !== null && propagated < deadline) {
    deadline = propagated;
    fromCaller = true;
  }
  const grpc = grpcDeadline(grpcTimeoutValue, nowMs);
  if (grpc !== null && grpc < deadline) {
    deadline = grpc;
    fromCaller = true;
  }
  context.deadlineAtMs = deadline;
  context.deadlineFromCaller = fromCaller;
}

/**
 * Sets `name` to `value` in a flat header list, replacing every field of that name (compared
 * case-insensitively), and returns the index of the value. `isPresent: false` (the caller's header
 * pass found none) appends without scanning.
 */
export function setHeader(headers: string[], name: string, value: string, isPresent = true): number {
  let at = -1;
  for (let i = 0; isPresent && i < headers.length; i += 2) {
    if (headers[i]!.length !== name.length || headers[i]!.toLowerCase() !== name) continue;
    if (at !== -1) {
      headers.splice(i, 2);
      i -= 2;
      continue;
    }
    headers[i + 1] = value;
    at = i + 1;
  }
  if (at !== -1) return at;
  headers.push(name, value);
  return headers.length - 1;
}
