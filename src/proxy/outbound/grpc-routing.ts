// The pure part of the outbound gRPC relay (h2-streams.ts): what a stream's `:path` names, which
// GRPCRoute rule takes it, which backend service, and how a rule's header modifiers change an
// HTTP/2 header object. No I/O; h2-streams.ts runs it once per stream.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type {
  GrpcMatch,
  GrpcRouteEntry,
  GrpcRule,
  HeaderModifier,
  ValueMatch,
  WeightedBackend,
} from '../routes/model.js';

/** The gRPC method a `:path` names; service and method null when it is not `/Service/Method`. */
export interface GrpcMethodName {
  readonly service: string | null;
  readonly method: string | null;
}

const NOT_GRPC: GrpcMethodName = Object.freeze({ service: null, method: null });

/**
 * `/package.Service/Method` → { service: 'package.Service', method: 'Method' } (gRPC over HTTP/2:
 * `Path → ":path" "/" Service-Name "/" {method name}`). Anything else (no second slash, a query,
 * an empty part, more parts) names no method: only rules without a method match take it.
 */
export function parseGrpcPath(path: string | undefined): GrpcMethodName {
  if (path === undefined || path.charCodeAt(0) !== 0x2f) return NOT_GRPC;
  const slash = path.indexOf('/', 1);
  if (slash <= 1 || slash === path.length - 1) return NOT_GRPC;
  if (path.indexOf('/', slash + 1) !== -1 || path.indexOf('?') !== -1) return NOT_GRPC;
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

/**
 * The first entry (entries come in Gateway API precedence order from routes/parse.ts) whose match
 * takes the request; null when none does (the caller answers UNIMPLEMENTED).
 */
export function selectGrpcRule(
  entries: readonly GrpcRouteEntry[],
  name: GrpcMethodName,
  headers: IncomingHttpHeaders,
): GrpcRule | null {
  for (const entry of entries) if (matches(entry.match, name, headers)) return entry.rule;
  return null;
}

function matches(match: GrpcMatch, name: GrpcMethodName, headers: IncomingHttpHeaders): boolean {
  const method = match.method;
  if (method !== null) {
    if (name.service === null || name.method === null) return false;
    if (method.type === 'Exact') {
      if (method.service !== null && method.service !== name.service) return false;
      if (method.method !== null && method.method !== name.method) return false;
    } else {
      if (method.service !== null && !fullMatch(method.service, name.service)) return false;
      if (method.method !== null && !fullMatch(method.method, name.method)) return false;
    }
  }
  for (const header of match.headers) if (!headerMatches(header, headers)) return false;
  return true;
}

function fullMatch(regex: RegExp, value: string): boolean {
  const found = regex.exec(value);
  return found !== null && found.index === 0 && found[0].length === value.length;
}

function headerMatches(match: ValueMatch, headers: IncomingHttpHeaders): boolean {
  // node:http2 lowercases names; the model keeps header match names lowercased.
  const value = headers[match.name];
  if (value === undefined) return false;
  const text = Array.isArray(value) ? value.join(',') : value;
  return match.type === 'Exact' ? text === match.value : fullMatch(match.regex, text);
}

/**
 * A backend by weight, `random()` in [0, 1); null when every weight is 0 (the rule takes the
 * request and sends it nowhere: UNAVAILABLE, as GRPCRoute asks for a rule without a usable backend).
 */
export function pickWeighted(
  backends: readonly WeightedBackend[],
  random: () => number,
): WeightedBackend | null {
  if (backends.length === 1) return backends[0]!.weight > 0 ? backends[0]! : null;
  let total = 0;
  for (const backend of backends) total += backend.weight;
  if (total <= 0) return null;
  let at = random() * total;
  for (const backend of backends) {
    if (at < backend.weight) return backend;
    at -= backend.weight;
  }
  // Rounding at the very top of the range: the last backend with any weight.
  for (let i = backends.length - 1; i >= 0; i--) if (backends[i]!.weight > 0) return backends[i]!;
  return null;
}

/**
 * Applies a RequestHeaderModifier or ResponseHeaderModifier to an HTTP/2 header object in place:
 * remove, then set, then add (a second value makes the field a list). Pseudo-headers are never
 * touched (routes/parse.ts refuses names that are not header names).
 */
export function modifyHeaderObject(
  headers: OutgoingHttpHeaders | IncomingHttpHeaders,
  modifier: HeaderModifier,
): void {
  const target = headers as Record<string, string | string[] | number | undefined>;
  for (const name of modifier.remove) delete target[name.toLowerCase()];
  for (const pair of modifier.set) target[pair.name.toLowerCase()] = pair.value;
  for (const pair of modifier.add) {
    const name = pair.name.toLowerCase();
    const existing = target[name];
    if (existing === undefined) target[name] = pair.value;
    else if (Array.isArray(existing)) existing.push(pair.value);
    else target[name] = [String(existing), pair.value];
  }
}
