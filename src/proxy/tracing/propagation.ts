// Reading and rewriting the propagation headers of one request, in the two shapes the listeners
// hold them: the flat [name, value, …] list of the HTTP/1.1 relays and the header object of the
// HTTP/2 stream relay. One pass collects the fields context.ts parses; the rewrite replaces
// traceparent (and the B3 fields, when B3 is emitted) so the next hop sees our span as its parent.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { emptyTraceHeaders, type TraceHeaders } from './context.js';

/** The headers to write for our span: traceparent always, tracestate and B3 when set. */
export interface Propagated {
  readonly traceparent: string;
  readonly tracestate: string | null;
  /** B3 single header value, null unless B3 is emitted. */
  readonly b3: string | null;
  /** The X-B3-* fields as a flat list, null unless multi-header B3 is emitted. */
  readonly b3Multi: readonly string[] | null;
}

/** The trace fields of a flat header list. Names are compared case-insensitively, lengths first. */
export function collectFlat(headers: readonly string[]): TraceHeaders {
  const found = emptyTraceHeaders();
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    // traceparent 11, tracestate 10, b3 2, x-b3-flags 10, x-b3-spanid 11, x-b3-traceid/-sampled 12,
    // x-b3-parentspanid 17 (not needed: the parent of the caller's span is not ours to report).
    if (name.length !== 2 && (name.length < 10 || name.length > 12)) continue;
    record(found, name.toLowerCase(), headers[i + 1]!);
  }
  return found;
}

/** The trace fields of an HTTP/2 header object (names already lower case). */
export function collectObject(headers: IncomingHttpHeaders): TraceHeaders {
  const found = emptyTraceHeaders();
  for (const name of COLLECTED_NAMES) {
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      if (name === 'tracestate') found.tracestate = value.join(',');
      else if (name === 'traceparent') found.traceparent = null;
      continue;
    }
    record(found, name, value);
  }
  return found;
}

/** The fields collected; x-b3-parentspanid is not (the parent of the caller's span is not ours to report). */
const COLLECTED_NAMES = [
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-sampled',
  'x-b3-flags',
] as const;

function record(found: TraceHeaders, lower: string, value: string): void {
  switch (lower) {
    case 'traceparent':
      found.traceparent = found.traceparent === undefined ? value : null;
      break;
    case 'tracestate':
      found.tracestate = found.tracestate === undefined ? value : `${found.tracestate},${value}`;
      break;
    case 'b3':
      found.b3 = value;
      break;
    case 'x-b3-traceid':
      found.xB3TraceId = value;
      break;
    case 'x-b3-spanid':
      found.xB3SpanId = value;
      break;
    case 'x-b3-sampled':
      found.xB3Sampled = value;
      break;
    case 'x-b3-flags':
      found.xB3Flags = value;
      break;
  }
}

const W3C_NAMES = new Set(['traceparent', 'tracestate']);
/** Every trace field, the uncollected x-b3-parentspanid too: a rewrite must leave none stale. */
const ALL_NAMES = new Set<string>([...COLLECTED_NAMES, 'x-b3-parentspanid']);

/**
 * Replaces the trace fields of a flat list in place: the W3C ones always, the B3 ones too when B3
 * is emitted (stale B3 beside a fresh traceparent would name another parent).
 */
export function writeFlat(headers: string[], out: Propagated): void {
  const replaced = out.b3 !== null || out.b3Multi !== null ? ALL_NAMES : W3C_NAMES;
  let kept = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length <= 17 && replaced.has(name.toLowerCase())) continue;
    headers[kept++] = name;
    headers[kept++] = headers[i + 1]!;
  }
  headers.length = kept;
  headers.push('traceparent', out.traceparent);
  if (out.tracestate !== null) headers.push('tracestate', out.tracestate);
  if (out.b3 !== null) headers.push('b3', out.b3);
  if (out.b3Multi !== null) headers.push(...out.b3Multi);
}

/** The same for an HTTP/2 header object. */
export function writeObject(headers: OutgoingHttpHeaders, out: Propagated): void {
  const replaced = out.b3 !== null || out.b3Multi !== null ? ALL_NAMES : W3C_NAMES;
  for (const name of replaced) delete headers[name];
  headers.traceparent = out.traceparent;
  if (out.tracestate !== null) headers.tracestate = out.tracestate;
  if (out.b3 !== null) headers.b3 = out.b3;
  if (out.b3Multi !== null) {
    for (let i = 0; i < out.b3Multi.length; i += 2) headers[out.b3Multi[i]!] = out.b3Multi[i + 1]!;
  }
}
