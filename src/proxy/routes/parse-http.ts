// HTTPRoute `spec.rules`: matches, filters, backendRefs, timeouts and the GEP-1731 retry, checked
// with Gateway API's validation rules (its CRD schema and CEL rules) and compiled into HttpRule.
import { quote } from '../../spiffe/errors.js';
import { showValue } from '../policy/match.js';
import type {
  HttpMatch,
  HttpRule,
  PathMatch,
  RouteOverrides,
  RouteRetry,
  RuleOrigin,
  ValueMatch,
} from './model.js';
import { httpFilters, type RuleContext } from './parse-filters.js';
import { backendRefs } from './parse-refs.js';
import { MAX_HEADER_MATCHES, type Raw } from './parse-support.js';

const MAX_RULES = 16;
export const MAX_MATCHES = 64;
export const MAX_RETRY_ATTEMPTS = 10;
const MAX_RETRY_CODES = 32;
const MAX_QUERY_NAME = 256;
const MAX_QUERY_VALUE = 1024;
/** HTTPMethod's enum. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
const QUERY_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const RULE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const EVERYTHING: PathMatch = Object.freeze({ type: 'PathPrefix', value: '/' });

export interface CompiledHttpRule {
  readonly rule: HttpRule;
  readonly matches: readonly HttpMatch[];
}

/** The rule's `name`, checked unique within the route; null when unnamed. */
function ruleName(ctx: RuleContext, value: unknown, at: string, seen: Set<string>): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || value.length > 253 || !RULE_NAME.test(value)) {
    ctx.check.problem(at, `must be a lowercase DNS name of up to 253 characters (got ${showValue(value)})`);
    return null;
  }
  if (seen.has(value)) ctx.check.problem(at, `${quote(value)} names another rule of this route`);
  seen.add(value);
  return value;
}

/**
 * What HTTPRoute and GRPCRoute rules share: `spec.rules` is a required, non-empty list of mappings
 * with unique names. `compile` gets each rule's mapping, where it came from and its path.
 */
export function compileRules<T>(
  ctx: RuleContext,
  value: unknown,
  kind: RuleOrigin['kind'],
  keys: readonly string[],
  refused: Readonly<Record<string, string>>,
  compile: (o: Raw, origin: RuleOrigin, at: string) => T,
): T[] {
  const { check } = ctx;
  if (value === undefined) {
    check.problem('spec.rules', 'is required (at least one rule with backendRefs)');
    return [];
  }
  const names = new Set<string>();
  const out: T[] = [];
  check.list(value, 'spec.rules', MAX_RULES).forEach((item, index) => {
    const at = `spec.rules[${index}]`;
    const o = check.mapping(item, at, keys, refused);
    if (o === null) return;
    const name = ruleName(ctx, o.name, `${at}.name`, names);
    out.push(compile(o, { route: ctx.route, kind, index, name: name ?? `rules[${index}]` }, at));
  });
  if (Array.isArray(value) && value.length === 0) check.problem('spec.rules', 'must have at least one rule');
  return out;
}

export function httpRules(ctx: RuleContext, value: unknown): CompiledHttpRule[] {
  const { check } = ctx;
  const keys = ['name', 'matches', 'filters', 'backendRefs', 'timeouts', 'retry'];
  const refused = { sessionPersistence: 'is not supported: the sidecar balances each request on its own' };
  return compileRules(ctx, value, 'HTTPRoute', keys, refused, (o, origin, at) => {
    const matches = httpMatches(ctx, o.matches, `${at}.matches`);
    const filters = httpFilters(ctx, o.filters, `${at}.filters`);
    const backends = backendRefs(check, o.backendRefs, `${at}.backendRefs`, ctx.namespace, ctx.services);
    if (filters.redirect !== null && Array.isArray(o.backendRefs) && o.backendRefs.length > 0)
      check.problem(
        `${at}.backendRefs`,
        'must be empty with a RequestRedirect filter: the proxy answers the redirect itself, so no backend would ever be used',
      );
    else if (filters.redirect === null && filters.ok && o.backendRefs === undefined)
      check.problem(at, 'needs backendRefs (where to send the requests) or a RequestRedirect filter');
    const prefixOnly = matches.every((m) => m.path.type === 'PathPrefix');
    for (const [field, modifier] of [
      ['requestRedirect', filters.redirect?.path],
      ['urlRewrite', filters.rewrite?.path],
    ] as const) {
      if (modifier?.type === 'ReplacePrefixMatch' && !prefixOnly)
        check.problem(
          `${at}.filters`,
          `${field}.path ReplacePrefixMatch needs every match of the rule to be a PathPrefix match (it replaces the matched prefix)`,
        );
    }
    const overrides: RouteOverrides = {
      timeouts: timeouts(ctx, o.timeouts, `${at}.timeouts`),
      retry: o.retry === undefined ? null : retry(ctx, o.retry, `${at}.retry`),
    };
    const rule: HttpRule = {
      origin,
      requestHeaders: filters.requestHeaders,
      responseHeaders: filters.responseHeaders,
      redirect: filters.redirect,
      rewrite: filters.rewrite,
      mirrors: filters.mirrors,
      backends: filters.redirect === null ? backends : [],
      overrides,
    };
    return { rule, matches };
  });
}

function httpMatches(ctx: RuleContext, value: unknown, at: string): HttpMatch[] {
  const { check } = ctx;
  const list = check.list(value, at, MAX_MATCHES);
  // No matches (absent or empty) is Gateway API's default: PathPrefix "/", every request.
  if (list.length === 0) return [{ path: EVERYTHING, headers: [], queryParams: [], method: null }];
  const out: HttpMatch[] = [];
  list.forEach((item, i) => {
    const m = `${at}[${i}]`;
    const o = check.mapping(item, m, ['path', 'headers', 'queryParams', 'method']);
    if (o === null) return;
    const path = o.path === undefined ? EVERYTHING : pathMatch(ctx, o.path, `${m}.path`);
    const headers = check.headerMatches(o.headers, `${m}.headers`);
    const queryParams = queryMatches(ctx, o.queryParams, `${m}.queryParams`);
    const method = o.method === undefined ? null : check.oneOf(o.method, `${m}.method`, METHODS, null);
    if (path !== null && (o.method === undefined || method !== null))
      out.push({ path, headers, queryParams, method });
  });
  return out;
}

function pathMatch(ctx: RuleContext, value: unknown, at: string): PathMatch | null {
  const { check } = ctx;
  const o = check.mapping(value, at, ['type', 'value']);
  if (o === null) return null;
  const type = check.oneOf(o.type, `${at}.type`, ['Exact', 'PathPrefix', 'RegularExpression'], 'PathPrefix');
  if (type === 'RegularExpression') {
    const regex = check.regex(o.value, `${at}.value`);
    return regex === null ? null : { type, value: o.value as string, regex };
  }
  const path = check.pathValue(o.value ?? '/', `${at}.value`);
  return path === null || type === null ? null : { type, value: path };
}

function queryMatches(ctx: RuleContext, value: unknown, at: string): ValueMatch[] {
  const { check } = ctx;
  const seen = new Map<string, number>();
  const out: ValueMatch[] = [];
  const name = (v: unknown, a: string): string | null => {
    const text = check.string(v, a, MAX_QUERY_NAME);
    if (text !== null && !QUERY_NAME.test(text)) {
      check.problem(
        a,
        `${showValue(text)} is not a query parameter name (letters, digits and !#$%&'*+-.^_\`|~)`,
      );
      return null;
    }
    return text;
  };
  check.list(value, at, MAX_HEADER_MATCHES).forEach((item, i) => {
    const match = check.valueMatch(item, `${at}[${i}]`, name, MAX_QUERY_VALUE);
    if (match === null) return;
    const first = seen.get(match.name);
    if (first !== undefined)
      check.problem(`${at}[${i}].name`, `${quote(match.name)} repeats ${at}[${first}]`);
    else {
      seen.set(match.name, i);
      out.push(match);
    }
  });
  return out;
}

function timeouts(
  ctx: RuleContext,
  value: unknown,
  at: string,
): { requestMs: number | null; backendRequestMs: number | null } {
  const { check } = ctx;
  if (value === undefined) return { requestMs: null, backendRequestMs: null };
  const o: Raw = check.mapping(value, at, ['request', 'backendRequest']) ?? {};
  const requestMs = o.request === undefined ? null : check.duration(o.request, `${at}.request`);
  const backendRequestMs =
    o.backendRequest === undefined ? null : check.duration(o.backendRequest, `${at}.backendRequest`);
  // Gateway API: backendRequest must not exceed a request timeout that is set and not disabled.
  if (requestMs !== null && requestMs !== 0 && backendRequestMs !== null && backendRequestMs > requestMs)
    check.problem(
      `${at}.backendRequest`,
      `must not be longer than request (${showValue(o.request)}) (got ${showValue(o.backendRequest)})`,
    );
  return { requestMs, backendRequestMs };
}

function retry(ctx: RuleContext, value: unknown, at: string): RouteRetry | null {
  const { check } = ctx;
  const o = check.mapping(value, at, ['codes', 'attempts', 'backoff']);
  if (o === null) return null;
  let onStatuses: number[] | null = null;
  if (o.codes !== undefined) {
    onStatuses = [];
    for (const [i, code] of check.list(o.codes, `${at}.codes`, MAX_RETRY_CODES).entries()) {
      const status = check.integer(code, `${at}.codes[${i}]`, 400, 599);
      if (status !== null && !onStatuses.includes(status)) onStatuses.push(status);
    }
  }
  const attempts =
    o.attempts === undefined ? null : check.integer(o.attempts, `${at}.attempts`, 0, MAX_RETRY_ATTEMPTS);
  let backoffMs: number | null = null;
  if (o.backoff !== undefined) {
    backoffMs = check.duration(o.backoff, `${at}.backoff`);
    if (backoffMs === 0)
      check.problem(`${at}.backoff`, "must be longer than 0s; omit it to keep the service's backoff");
  }
  return { maxAttempts: attempts === null ? null : attempts + 1, onStatuses, backoffMs };
}
