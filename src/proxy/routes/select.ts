// Picks the route entry a request takes, and the backend of a weighted split. This runs for every
// request through a routed listener, so it allocates nothing it can avoid: the entries come
// ordered from parse.ts (Gateway API precedence), the first that matches wins, and each check
// reads the raw target and header list in place.
//
// What is compared, and how:
// - the path is the target up to `?`, as sent: no percent-decoding or normalization (a route
//   for `/a%2Fb` matches exactly that; the inbound side normalizes before authorizing);
// - header names case-insensitively; a header sent several times is matched on its values joined
//   with "," (RFC 9110 §5.3, as Envoy does);
// - query parameters by exact (case-sensitive) name, raw (not decoded), on the first occurrence as
//   Gateway API recommends, among the first 64 parameters of the query.
import type {
  GrpcRouteEntry,
  HttpMatch,
  HttpRouteEntry,
  PathMatch,
  RouteRequest,
  ValueMatch,
  WeightedBackend,
} from './model.js';

/** Query parameters read per request; later ones are never matched. */
export const MAX_QUERY_PARAMS = 64;
const SLASH = 47;
const AMPERSAND = 38;
const EQUALS = 61;

/** The first entry (in precedence order) whose match holds for the request, or null (the 404 case). */
export function selectHttpRoute(
  entries: readonly HttpRouteEntry[],
  request: RouteRequest,
): HttpRouteEntry | null {
  const target = request.target;
  const queryStart = target.indexOf('?');
  const path = queryStart < 0 ? target : target.slice(0, queryStart);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (matchesHttp(entry.match, path, target, queryStart, request)) return entry;
  }
  return null;
}

function matchesHttp(
  match: HttpMatch,
  path: string,
  target: string,
  queryStart: number,
  request: RouteRequest,
): boolean {
  if (!matchesPath(match.path, path)) return false;
  if (match.method !== null && match.method !== request.method) return false;
  const headers = match.headers;
  for (let i = 0; i < headers.length; i++) {
    if (!matchesValue(headers[i]!, headerValue(request.headers, headers[i]!.name))) return false;
  }
  const query = match.queryParams;
  for (let i = 0; i < query.length; i++) {
    if (!matchesValue(query[i]!, queryValue(target, queryStart, query[i]!.name))) return false;
  }
  return true;
}

/** Gateway API path matching; PathPrefix is element-wise and ignores a trailing "/" of the prefix. */
export function matchesPath(match: PathMatch, path: string): boolean {
  if (match.type === 'Exact') return path === match.value;
  if (match.type === 'RegularExpression') return match.regex.test(path);
  const prefix = match.value;
  // "/" is every request, "*" (OPTIONS *) included.
  if (prefix.length === 1) return true;
  if (!path.startsWith(prefix)) {
    // "/abc/" also matches "/abc" itself.
    return (
      prefix.charCodeAt(prefix.length - 1) === SLASH &&
      path.length === prefix.length - 1 &&
      prefix.startsWith(path)
    );
  }
  // Past the prefix the path must end or start a new element ("/abc" does not match "/abcd").
  return (
    path.length === prefix.length ||
    prefix.charCodeAt(prefix.length - 1) === SLASH ||
    path.charCodeAt(prefix.length) === SLASH
  );
}

function matchesValue(match: ValueMatch, value: string | undefined): boolean {
  if (value === undefined) return false;
  return match.type === 'Exact' ? value === match.value : match.regex.test(value);
}

/** The value of header `lowerName` (lowercase), repeated fields joined with ","; undefined when absent. */
export function headerValue(headers: readonly string[], lowerName: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length !== lowerName.length) continue;
    if (name !== lowerName && name.toLowerCase() !== lowerName) continue;
    found = found === undefined ? headers[i + 1]! : `${found},${headers[i + 1]!}`;
  }
  return found;
}

/** The raw value of the first query parameter `name` ("" for `?name` or `?name=`); undefined when absent. */
export function queryValue(target: string, queryStart: number, name: string): string | undefined {
  if (queryStart < 0) return undefined;
  let start = queryStart + 1;
  for (let n = 0; n < MAX_QUERY_PARAMS && start <= target.length; n++) {
    let end = target.indexOf('&', start);
    if (end < 0) end = target.length;
    if (end - start >= name.length && target.startsWith(name, start)) {
      const after = start + name.length;
      if (after === end) return '';
      if (target.charCodeAt(after) === EQUALS) return target.slice(after + 1, end);
    }
    if (end === target.length || target.charCodeAt(end) !== AMPERSAND) break;
    start = end + 1;
  }
  return undefined;
}

/**
 * GRPCRoute: the first entry whose method and header matches hold for a call to
 * `/service/method`. `headers` is the flat name/value list, as for HTTP.
 */
export function selectGrpcRoute(
  entries: readonly GrpcRouteEntry[],
  service: string,
  method: string,
  headers: readonly string[],
): GrpcRouteEntry | null {
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const m = entry.match.method;
    if (m !== null) {
      if (m.type === 'Exact') {
        if (m.service !== null && m.service !== service) continue;
        if (m.method !== null && m.method !== method) continue;
      } else {
        if (m.service !== null && !m.service.test(service)) continue;
        if (m.method !== null && !m.method.test(method)) continue;
      }
    }
    const conditions = entry.match.headers;
    let ok = true;
    for (let j = 0; ok && j < conditions.length; j++)
      ok = matchesValue(conditions[j]!, headerValue(headers, conditions[j]!.name));
    if (ok) return entry;
  }
  return null;
}

/**
 * A backend of a weighted split, chosen with probability weight / total; null when every weight
 * is 0 (Gateway API: the proxy answers 500). One backend with a weight is taken without a draw.
 */
export function pickBackend(backends: readonly WeightedBackend[], random: () => number): string | null {
  let total = 0;
  let only: WeightedBackend | null = null;
  for (let i = 0; i < backends.length; i++) {
    const weight = backends[i]!.weight;
    if (weight > 0) only = total === 0 ? backends[i]! : null;
    total += weight;
  }
  if (total === 0) return null;
  if (only !== null) return only.service;
  let point = random() * total;
  for (let i = 0; i < backends.length; i++) {
    point -= backends[i]!.weight;
    if (point < 0) return backends[i]!.service;
  }
  // random() may return a value so close to 1 that rounding lands past the end: the last backend with a weight.
  for (let i = backends.length - 1; i >= 0; i--) if (backends[i]!.weight > 0) return backends[i]!.service;
  return null;
}
