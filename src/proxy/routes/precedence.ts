// Orders the matches of every route attached to one parent as Gateway API says they are tried,
// so select.ts can take the first that matches. HTTPRoute (its `HTTPRouteRule.matches` doc):
// Exact path, then PathPrefix with the most characters, then (implementation-specific) regular
// expressions; then a method match; then the most header matches; then the most query
// matches. GRPCRoute: the most characters in a matching service, then in a matching method,
// then the most header matches. Ties across routes: the oldest route, then "namespace/name" in
// alphabetical order; within a route, the first rule, then (ours) the first match of the rule.
import type { GrpcMatch, GrpcRouteEntry, HttpMatch, HttpRouteEntry } from './model.js';

/** What breaks ties between routes. */
export interface RouteRank {
  /** `metadata.creationTimestamp` in ms; routes without one count as newest. */
  readonly createdMs: number;
  /** `namespace/name`. */
  readonly key: string;
}

export interface RankedHttp {
  readonly entry: HttpRouteEntry;
  readonly route: RouteRank;
  readonly matchIndex: number;
}

export interface RankedGrpc {
  readonly entry: GrpcRouteEntry;
  readonly route: RouteRank;
  readonly matchIndex: number;
}

const PATH_RANK = { Exact: 0, PathPrefix: 1, RegularExpression: 2 } as const;

export function orderHttp(entries: RankedHttp[]): HttpRouteEntry[] {
  return entries.sort(compareHttp).map((e) => e.entry);
}

export function orderGrpc(entries: RankedGrpc[]): GrpcRouteEntry[] {
  return entries.sort(compareGrpc).map((e) => e.entry);
}

function compareHttp(a: RankedHttp, b: RankedHttp): number {
  return compareHttpMatch(a.entry.match, b.entry.match) || compareTies(a, b);
}

function compareHttpMatch(a: HttpMatch, b: HttpMatch): number {
  const byType = PATH_RANK[a.path.type] - PATH_RANK[b.path.type];
  if (byType !== 0) return byType;
  if (a.path.type === 'PathPrefix') {
    const byLength = b.path.value.length - a.path.value.length;
    if (byLength !== 0) return byLength;
  }
  return (
    Number(b.method !== null) - Number(a.method !== null) ||
    b.headers.length - a.headers.length ||
    b.queryParams.length - a.queryParams.length
  );
}

function compareGrpc(a: RankedGrpc, b: RankedGrpc): number {
  return compareGrpcMatch(a.entry.match, b.entry.match) || compareTies(a, b);
}

function compareGrpcMatch(a: GrpcMatch, b: GrpcMatch): number {
  return (
    serviceChars(b) - serviceChars(a) ||
    methodChars(b) - methodChars(a) ||
    b.headers.length - a.headers.length
  );
}

function serviceChars(m: GrpcMatch): number {
  if (m.method === null) return 0;
  return (m.method.type === 'Exact' ? m.method.service : m.method.serviceSource)?.length ?? 0;
}

function methodChars(m: GrpcMatch): number {
  if (m.method === null) return 0;
  return (m.method.type === 'Exact' ? m.method.method : m.method.methodSource)?.length ?? 0;
}

/** Matches of equal precedence: the route's rank, then the rule's place in it, then the match's. */
function compareTies(a: RankedHttp | RankedGrpc, b: RankedHttp | RankedGrpc): number {
  return (
    compareRoutes(a.route, b.route) ||
    a.entry.rule.origin.index - b.entry.rule.origin.index ||
    a.matchIndex - b.matchIndex
  );
}

function compareRoutes(a: RouteRank, b: RouteRank): number {
  if (a.createdMs !== b.createdMs) return a.createdMs < b.createdMs ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
