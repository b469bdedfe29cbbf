// What a routed listener would do with one request, as plain data for `route check`: the route
// and rule it takes, the condition that matched, what the filters change, and where it goes. Uses
// the very select.ts and filters.ts the router runs, so the answer is the proxy's.
import { redirectResponse, rewriteTarget } from './filters.js';
import type {
  GrpcMatch,
  HeaderModifier,
  HttpMatch,
  RouteRequest,
  RouteTable,
  RuleOrigin,
  ValueMatch,
  WeightedBackend,
} from './model.js';
import { headerValue, selectGrpcRoute, selectHttpRoute } from './select.js';

export interface BackendShare {
  readonly service: string;
  readonly weight: number;
  /** Percentage of the rule's traffic, 0 to 100. */
  readonly sharePercent: number;
}

export interface Explanation {
  /** The parent service whose routes were consulted. */
  readonly service: string;
  /** False: the service has no routes at all, so everything goes to the service itself. */
  readonly routed: boolean;
  /** The rule the request takes; null when no route matches (the proxy answers 404). */
  readonly rule: (RuleOrigin & { readonly match: string }) | null;
  /** The HTTP status the proxy answers itself: 404 (no route), 500 (every weight 0), a redirect's. */
  readonly status: number | null;
  readonly redirect: string | null;
  /** The target sent upstream, when a URLRewrite changes it. */
  readonly rewrittenTarget: string | null;
  readonly rewrittenHost: string | null;
  /** Request header changes, as `set x: v` / `add x: v` / `remove x`. */
  readonly requestHeaders: readonly string[];
  readonly responseHeaders: readonly string[];
  readonly backends: readonly BackendShare[];
  readonly mirrors: readonly { readonly service: string; readonly percent: number }[];
  readonly timeouts: { readonly requestMs: number | null; readonly backendRequestMs: number | null } | null;
  readonly retry: {
    readonly maxAttempts: number | null;
    readonly onStatuses: readonly number[] | null;
    readonly backoffMs: number | null;
  } | null;
}

const NOTHING = {
  redirect: null,
  rewrittenTarget: null,
  rewrittenHost: null,
  requestHeaders: [],
  responseHeaders: [],
  mirrors: [],
  timeouts: null,
  retry: null,
} as const;

/** The HTTP request's fate at an outbound listener sending to `service`. */
export function explainHttp(
  table: RouteTable,
  service: string,
  request: RouteRequest,
  listenerScheme: 'http' | 'https' = 'http',
): Explanation {
  const entries = table.http.get(service);
  if (entries === undefined || entries.length === 0) return unrouted(service);
  const entry = selectHttpRoute(entries, request);
  if (entry === null) return noMatch(service);
  const { rule, match } = entry;
  const origin = { ...rule.origin, match: describeHttpMatch(match) };
  const host = headerValue(request.headers, 'host');
  if (rule.redirect !== null) {
    const answer = redirectResponse(rule.redirect, match, request.target, host, listenerScheme);
    return {
      service,
      routed: true,
      rule: origin,
      status: answer.status,
      backends: [],
      ...NOTHING,
      redirect: answer.location,
      requestHeaders: describeModifier(rule.requestHeaders),
      responseHeaders: describeModifier(rule.responseHeaders),
    };
  }
  const target = rewriteTarget(rule, match, request.target);
  const backends = shares(rule.backends);
  const { timeouts, retry } = rule.overrides;
  const hasTimeouts = timeouts.requestMs !== null || timeouts.backendRequestMs !== null;
  return {
    service,
    routed: true,
    rule: origin,
    status: backends.length > 0 ? null : 500,
    redirect: null,
    rewrittenTarget: target === request.target ? null : target,
    rewrittenHost: rule.rewrite?.hostname ?? null,
    requestHeaders: describeModifier(rule.requestHeaders),
    responseHeaders: describeModifier(rule.responseHeaders),
    backends,
    mirrors: rule.mirrors.map((m) => ({ service: m.service, percent: round(m.share * 100) })),
    timeouts: hasTimeouts ? timeouts : null,
    retry,
  };
}

/** A gRPC call to `/grpcService/method` at an outbound listener sending to `service`. */
export function explainGrpc(
  table: RouteTable,
  service: string,
  grpcService: string,
  method: string,
  headers: readonly string[],
): Explanation {
  const entries = table.grpc.get(service);
  if (entries === undefined || entries.length === 0) return unrouted(service);
  const entry = selectGrpcRoute(entries, grpcService, method, headers);
  if (entry === null) return noMatch(service);
  const backends = shares(entry.rule.backends);
  return {
    service,
    routed: true,
    rule: { ...entry.rule.origin, match: describeGrpcMatch(entry.match) },
    status: backends.length > 0 ? null : 500,
    backends,
    ...NOTHING,
    requestHeaders: describeModifier(entry.rule.requestHeaders),
    responseHeaders: describeModifier(entry.rule.responseHeaders),
  };
}

/** The service has no routes (of the request's kind): everything goes to the service itself. */
function unrouted(service: string): Explanation {
  return {
    service,
    routed: false,
    rule: null,
    status: null,
    backends: shares([{ service, weight: 1 }]),
    ...NOTHING,
  };
}

/** The service has routes but none matches: the proxy answers 404. */
function noMatch(service: string): Explanation {
  return { service, routed: true, rule: null, status: 404, backends: [], ...NOTHING };
}

/** Each backend with a weight and its share; empty when every weight is 0. */
function shares(backends: readonly WeightedBackend[]): BackendShare[] {
  const total = backends.reduce((sum, b) => sum + b.weight, 0);
  if (total === 0) return [];
  return backends
    .filter((b) => b.weight > 0)
    .map((b) => ({ service: b.service, weight: b.weight, sharePercent: round((b.weight / total) * 100) }));
}

function round(percent: number): number {
  return Math.round(percent * 100) / 100;
}

export function describeHttpMatch(match: HttpMatch): string {
  const parts = [`path ${match.path.type} ${JSON.stringify(match.path.value)}`];
  if (match.method !== null) parts.push(`method ${match.method}`);
  for (const h of match.headers) parts.push(`header ${describeValue(h)}`);
  for (const q of match.queryParams) parts.push(`query ${describeValue(q)}`);
  return parts.join(', ');
}

function describeGrpcMatch(match: GrpcMatch): string {
  const parts: string[] = [];
  const m = match.method;
  if (m === null) parts.push('any method');
  else if (m.type === 'Exact') parts.push(`method Exact ${m.service ?? '*'}/${m.method ?? '*'}`);
  else parts.push(`method RegularExpression ${m.serviceSource ?? '.*'}/${m.methodSource ?? '.*'}`);
  for (const h of match.headers) parts.push(`header ${describeValue(h)}`);
  return parts.join(', ');
}

function describeValue(v: ValueMatch): string {
  // The compiled pattern is `^(?:…)$`: show what the route wrote.
  const value =
    v.type === 'Exact'
      ? v.value
      : `${v.regex.flags.includes('i') ? '(?i)' : ''}${v.regex.source.slice(4, -2)}`;
  return `${v.name} ${v.type} ${JSON.stringify(value)}`;
}

function describeModifier(mod: HeaderModifier | null): string[] {
  if (mod === null) return [];
  return [
    ...mod.remove.map((n) => `remove ${n}`),
    ...mod.set.map((h) => `set ${h.name}: ${h.value}`),
    ...mod.add.map((h) => `add ${h.name}: ${h.value}`),
  ];
}
