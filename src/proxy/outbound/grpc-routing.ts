// The pure part of the outbound gRPC relay (h2-streams.ts): what a stream's `:path` names, which
// GRPCRoute entry takes it (matching itself is routes/select.ts, shared with HTTP routes), and how
// a rule's header modifiers change an HTTP/2 header object. No I/O; run once per stream.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { GrpcRouteEntry, HeaderModifier } from '../routes/model.js';
import { selectGrpcRoute } from '../routes/select.js';

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
 * The GRPCRoute entry that takes a stream to `path` (routes/select.ts, entries in Gateway API
 * precedence order); null when none does (the relay answers UNIMPLEMENTED). A path that names no
 * gRPC method can only be taken by a rule without a method match.
 */
export function selectGrpcEntry(
  entries: readonly GrpcRouteEntry[],
  path: string | undefined,
  rawHeaders: readonly string[],
): GrpcRouteEntry | null {
  const name = parseGrpcPath(path);
  if (name.service !== null && name.method !== null)
    return selectGrpcRoute(entries, name.service, name.method, rawHeaders);
  // Rare (a gRPC client always sends /Service/Method): a filtered copy is fine here.
  const methodless = entries.filter((entry) => entry.match.method === null);
  return methodless.length === 0 ? null : selectGrpcRoute(methodless, '', '', rawHeaders);
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
