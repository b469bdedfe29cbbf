// Trace context on the wire: W3C Trace Context (`traceparent`, `tracestate`) and Zipkin's B3 (single
// `b3` header, and the multi-header X-B3-* form), parsed into one shape and written back as W3C (and
// B3 when asked). Pure string work, no OpenTelemetry import: the listeners pay for it only when
// tracing is on, and the packages stay unloaded otherwise. Malformed input is never an error for
// the request: a header that does not parse is ignored, as the W3C spec asks, and the proxy starts
// a trace of its own.

/** The trace a request arrived in, from whichever header won (traceparent > b3 > X-B3-*). */
export interface IncomingTrace {
  /** 32 lowercase hex digits; '' when the caller sent only a sampling decision (`b3: 0`). */
  readonly traceId: string;
  /** The caller's span (16 hex digits), parent of ours; '' when none was sent. */
  readonly parentSpanId: string;
  /** The caller's sampling decision, or null when it left the decision to us (B3's "deferred"). */
  readonly sampled: boolean | null;
  /** The `tracestate` to pass on (only with a valid traceparent), bounded; null when none. */
  readonly tracestate: string | null;
  /** It came from a valid traceparent (not B3). */
  readonly isW3c: boolean;
}

/** The raw propagation headers of one request, as propagation.ts collects them. */
export interface TraceHeaders {
  /** `traceparent`; null when it came more than once (ambiguous, so ignored). */
  traceparent: string | null | undefined;
  /** `tracestate` fields joined by ',' (the spec allows splitting it over several fields). */
  tracestate: string | undefined;
  b3: string | undefined;
  xB3TraceId: string | undefined;
  xB3SpanId: string | undefined;
  xB3Sampled: string | undefined;
  xB3Flags: string | undefined;
}

/** W3C: at most 32 list members; at least 512 characters kept when truncating (we keep at most that). */
export const MAX_TRACESTATE_MEMBERS = 32;
export const MAX_TRACESTATE_CHARS = 512;
/** W3C: members longer than this are the first to go when tracestate must be truncated. */
const LONG_TRACESTATE_MEMBER = 128;

const HEX_32 = /^[0-9a-f]{32}$/;
const HEX_16 = /^[0-9a-f]{16}$/;
const ZERO_32 = '0'.repeat(32);
const ZERO_16 = '0'.repeat(16);
const TRACESTATE_KEY =
  /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
// Printable ASCII but ',' and '=', 1 to 256 characters, not ending in a space.
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

export function emptyTraceHeaders(): TraceHeaders {
  return {
    traceparent: undefined,
    tracestate: undefined,
    b3: undefined,
    xB3TraceId: undefined,
    xB3SpanId: undefined,
    xB3Sampled: undefined,
    xB3Flags: undefined,
  };
}

/** The trace the headers carry, by precedence traceparent > b3 > X-B3-*; null when none parses. */
export function extractTrace(headers: TraceHeaders): IncomingTrace | null {
  if (headers.traceparent) {
    const parent = parseTraceparent(headers.traceparent);
    if (parent !== null) {
      const tracestate = headers.tracestate === undefined ? null : boundTracestate(headers.tracestate);
      return {
        traceId: parent.traceId,
        parentSpanId: parent.parentSpanId,
        sampled: parent.sampled,
        tracestate,
        isW3c: true,
      };
    }
  }
  if (headers.b3 !== undefined) {
    const b3 = parseB3Single(headers.b3);
    if (b3 !== null) return b3;
  }
  return parseB3Multi(headers);
}

/**
 * A `traceparent` value: version 00 exactly (55 characters); a later version by the spec's rule,
 * its first four fields read as 00's and anything after a '-' at 55 ignored. Version ff, upper case,
 * wrong lengths and all-zero IDs are refused (null).
 */
export function parseTraceparent(value: string): Omit<IncomingTrace, 'tracestate' | 'isW3c'> | null {
  // Character checks rather than slices and regular expressions: this runs on every traced request.
  const text = value.length === 55 ? value : value.trim();
  if (text.length < 55) return null;
  const version = hexByte(text, 0);
  if (version < 0 || version === 0xff) return null;
  if (version === 0 ? text.length !== 55 : text.length > 55 && text[55] !== '-') return null;
  if (text[2] !== '-' || text[35] !== '-' || text[52] !== '-') return null;
  if (!isLowerHex(text, 3, 35) || !isLowerHex(text, 36, 52)) return null;
  const flags = hexByte(text, 53);
  if (flags < 0) return null;
  const traceId = text.slice(3, 35);
  const parentSpanId = text.slice(36, 52);
  if (traceId === ZERO_32 || parentSpanId === ZERO_16) return null;
  return { traceId, parentSpanId, sampled: (flags & 1) === 1 };
}

/** Whether text[start, end) is all lowercase hex digits. */
function isLowerHex(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** The byte written as two lowercase hex digits at `at`, or -1. */
function hexByte(text: string, at: number): number {
  return isLowerHex(text, at, at + 2) ? Number.parseInt(text.slice(at, at + 2), 16) : -1;
}

/** The version-00 `traceparent` for our span. */
export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

/**
 * `tracestate` as it may be passed on: null when it is not a valid list (more than 32 members, a
 * repeated key, a malformed member: the spec says not to propagate what we cannot parse), else
 * at most 512 characters, dropping members longer than 128 characters first and then from the end.
 */
export function boundTracestate(value: string): string | null {
  const members: string[] = [];
  const keys = new Set<string>();
  for (const raw of value.split(',')) {
    const member = raw.trim();
    if (member === '') continue;
    const eq = member.indexOf('=');
    if (eq <= 0) return null;
    const key = member.slice(0, eq);
    if (!TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(member.slice(eq + 1)) || keys.has(key))
      return null;
    keys.add(key);
    members.push(member);
    if (members.length > MAX_TRACESTATE_MEMBERS) return null;
  }
  if (members.length === 0) return null;
  let kept = members;
  const length = (list: readonly string[]) => list.reduce((n, m) => n + m.length, 0) + list.length - 1;
  if (length(kept) > MAX_TRACESTATE_CHARS) {
    kept = kept.filter((m) => m.length <= LONG_TRACESTATE_MEMBER);
    while (kept.length > 0 && length(kept) > MAX_TRACESTATE_CHARS) kept = kept.slice(0, -1);
  }
  return kept.length === 0 ? null : kept.join(',');
}

/**
 * B3 single header: `{trace}-{span}[-{sampled}[-{parent}]]` with a 64- or 128-bit trace ID (a
 * 64-bit one is left-padded to 128 bits, as OpenTelemetry does), or a decision alone: `0`, `1`,
 * `d` (debug, which means sampled).
 */
export function parseB3Single(value: string): IncomingTrace | null {
  const text = value.trim();
  if (text.length === 1) {
    const sampled = b3Decision(text);
    return sampled === undefined
      ? null
      : { traceId: '', parentSpanId: '', sampled, tracestate: null, isW3c: false };
  }
  const parts = text.split('-');
  if (parts.length < 2 || parts.length > 4) return null;
  const traceId = b3TraceId(parts[0]!);
  const spanId = parts[1]!;
  if (traceId === null || !HEX_16.test(spanId) || spanId === ZERO_16) return null;
  let sampled: boolean | null = null;
  if (parts.length >= 3) {
    const decision = b3Decision(parts[2]!);
    if (decision === undefined) return null;
    sampled = decision;
  }
  if (parts.length === 4 && (!HEX_16.test(parts[3]!) || parts[3] === ZERO_16)) return null;
  return { traceId, parentSpanId: spanId, sampled, tracestate: null, isW3c: false };
}

/** B3 multi-header: X-B3-TraceId and X-B3-SpanId together, X-B3-Sampled and X-B3-Flags (1 = debug). */
export function parseB3Multi(headers: TraceHeaders): IncomingTrace | null {
  let sampled: boolean | null = null;
  if (headers.xB3Flags?.trim() === '1') sampled = true;
  else if (headers.xB3Sampled !== undefined) {
    const text = headers.xB3Sampled.trim().toLowerCase();
    // "true"/"false" are what old B3 implementations sent before 1/0.
    if (text === '1' || text === 'true') sampled = true;
    else if (text === '0' || text === 'false') sampled = false;
  }
  if (headers.xB3TraceId !== undefined && headers.xB3SpanId !== undefined) {
    const traceId = b3TraceId(headers.xB3TraceId.trim());
    const spanId = headers.xB3SpanId.trim();
    if (traceId !== null && HEX_16.test(spanId) && spanId !== ZERO_16)
      return { traceId, parentSpanId: spanId, sampled, tracestate: null, isW3c: false };
  }
  return sampled === null ? null : { traceId: '', parentSpanId: '', sampled, tracestate: null, isW3c: false };
}

/** The B3 single header for our span: `{trace}-{span}-{1|0}`. */
export function formatB3Single(traceId: string, spanId: string, sampled: boolean): string {
  return `${traceId}-${spanId}-${sampled ? '1' : '0'}`;
}

function b3TraceId(text: string): string | null {
  const id = text.length === 16 ? `${ZERO_16}${text}` : text;
  return HEX_32.test(id) && id !== ZERO_32 ? id : null;
}

function b3Decision(text: string): boolean | undefined {
  if (text === '1' || text === 'd') return true;
  if (text === '0') return false;
  return undefined;
}
