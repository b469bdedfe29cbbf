// HTTPRoute `spec.rules`: matches, filters, backendRefs, timeouts and the GEP-1731 retry, checked
// with Gateway API's validation rules (its CRD schema and CEL rules) and compiled into HttpRule.
import { quote } from '../../spiffe/errors.js';
import { showValue } from '../policy/match.js';
import type {
  HeaderModifier,
  HttpMatch,
  HttpRule,
  PathMatch,
  RequestMirror,
  RequestRedirect,
  RouteOverrides,
  RouteRetry,
  RuleOrigin,
  UrlRewrite,
  ValueMatch,
} from './model.js';
import { backendRefs, mirrorRef } from './parse-refs.js';
import { MAX_HEADER_MATCHES, MAX_MODIFIER_ENTRIES, type Raw, type RouteChecker } from './parse-support.js';

export const MAX_RULES = 16;
export const MAX_MATCHES = 64;
export const MAX_FILTERS = 16;
export const MAX_RETRY_ATTEMPTS = 10;
const MAX_RETRY_CODES = 32;
const MAX_QUERY_NAME = 256;
const MAX_QUERY_VALUE = 1024;
/** HTTPMethod's enum. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
const QUERY_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const RULE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const STATUS_CODES = [301, 302, 303, 307, 308];
const EVERYTHING: PathMatch = Object.freeze({ type: 'PathPrefix', value: '/' });

/** The filter types Gateway API defines, with the field each one's settings go in. */
const FILTER_FIELDS: Readonly<Record<string, string>> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  RequestMirror: 'requestMirror',
  ExtensionRef: 'extensionRef',
  CORS: 'cors',
  ExternalAuth: 'externalAuth',
};
const SUPPORTED_FILTERS = [
  'RequestHeaderModifier',
  'ResponseHeaderModifier',
  'RequestRedirect',
  'URLRewrite',
  'RequestMirror',
];
export const REFUSED_FILTERS: Readonly<Record<string, string>> = {
  ExtensionRef: 'ExtensionRef filters are not supported: sigil-proxy has no extension resources',
  CORS: 'CORS filters are not supported by the sidecar: the application answers CORS itself',
  ExternalAuth: 'ExternalAuth filters are not supported; use the inbound authorization policy',
};

export interface CompiledHttpRule {
  readonly rule: HttpRule;
  readonly matches: readonly HttpMatch[];
}

export interface RuleContext {
  readonly check: RouteChecker;
  readonly route: string;
  readonly namespace: string;
  readonly services: ReadonlySet<string>;
}

/** The rule's `name`, checked unique within the route; null when unnamed. */
export function ruleName(ctx: RuleContext, value: unknown, at: string, seen: Set<string>): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || value.length > 253 || !RULE_NAME.test(value)) {
    ctx.check.problem(at, `must be a lowercase DNS name of up to 253 characters (got ${showValue(value)})`);
    return null;
  }
  if (seen.has(value)) ctx.check.problem(at, `${quote(value)} names another rule of this route`);
  seen.add(value);
  return value;
}

export function httpRules(ctx: RuleContext, value: unknown): CompiledHttpRule[] {
  const { check } = ctx;
  if (value === undefined) {
    check.problem('spec.rules', 'is required (at least one rule with backendRefs)');
    return [];
  }
  const names = new Set<string>();
  const out: CompiledHttpRule[] = [];
  check.list(value, 'spec.rules', MAX_RULES).forEach((item, index) => {
    const at = `spec.rules[${index}]`;
    const o = check.mapping(item, at, ['name', 'matches', 'filters', 'backendRefs', 'timeouts', 'retry'], {
      sessionPersistence: 'is not supported: the sidecar balances each request on its own',
    });
    if (o === null) return;
    const name = ruleName(ctx, o.name, `${at}.name`, names);
    const origin: RuleOrigin = {
      route: ctx.route,
      kind: 'HTTPRoute',
      index,
      name: name ?? `rules[${index}]`,
    };
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
    out.push({ rule, matches });
  });
  if (Array.isArray(value) && value.length === 0) check.problem('spec.rules', 'must have at least one rule');
  return out;
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

interface Filters {
  /** False when a filter was refused: then "no backendRefs" is not worth a second message. */
  ok: boolean;
  requestHeaders: HeaderModifier | null;
  responseHeaders: HeaderModifier | null;
  redirect: RequestRedirect | null;
  rewrite: UrlRewrite | null;
  mirrors: RequestMirror[];
}

function httpFilters(ctx: RuleContext, value: unknown, at: string): Filters {
  const { check } = ctx;
  const out: Filters = {
    ok: true,
    requestHeaders: null,
    responseHeaders: null,
    redirect: null,
    rewrite: null,
    mirrors: [],
  };
  const seen = new Map<string, number>();
  check.list(value, at, MAX_FILTERS).forEach((item, i) => {
    const f = `${at}[${i}]`;
    const o = filterSettings(check, item, f, SUPPORTED_FILTERS, REFUSED_FILTERS);
    if (o === null) {
      out.ok = false;
      return;
    }
    const { type, settings } = o;
    const first = seen.get(type);
    if (first !== undefined && type !== 'RequestMirror') {
      check.problem(
        `${f}.type`,
        `${type} is already filters[${first}]: a rule takes each filter type once (RequestMirror aside)`,
      );
      return;
    }
    seen.set(type, i);
    const where = `${f}.${FILTER_FIELDS[type]}`;
    if (type === 'RequestHeaderModifier') out.requestHeaders = headerModifier(check, settings, where);
    else if (type === 'ResponseHeaderModifier') out.responseHeaders = headerModifier(check, settings, where);
    else if (type === 'RequestRedirect') {
      out.redirect = redirect(check, settings, where);
      if (out.redirect === null) out.ok = false;
    } else if (type === 'URLRewrite') out.rewrite = rewrite(check, settings, where);
    else {
      const mirror = requestMirror(ctx, settings, where);
      if (mirror !== null) out.mirrors.push(mirror);
    }
  });
  if (seen.has('RequestRedirect') && seen.has('URLRewrite'))
    check.problem(
      at,
      'RequestRedirect and URLRewrite cannot be used together: a redirect sends nothing upstream to rewrite',
    );
  return out;
}

/** One filter: its `type` and the settings field that goes with it (and no other). */
export function filterSettings(
  check: RouteChecker,
  item: unknown,
  at: string,
  supported: readonly string[],
  refused: Readonly<Record<string, string>>,
): { type: string; settings: unknown } | null {
  const o = check.mapping(item, at, ['type', ...Object.values(FILTER_FIELDS)]);
  if (o === null) return null;
  const type = o.type;
  if (typeof type === 'string' && refused[type] !== undefined) {
    check.problem(`${at}.type`, refused[type]!);
    return null;
  }
  if (typeof type !== 'string' || !supported.includes(type)) {
    check.problem(`${at}.type`, `must be one of ${supported.join(', ')} (got ${showValue(type)})`);
    return null;
  }
  const field = FILTER_FIELDS[type]!;
  for (const other of Object.values(FILTER_FIELDS)) {
    if (other !== field && o[other] !== undefined)
      check.problem(`${at}.${other}`, `must not be set when type is ${type}`);
  }
  if (o[field] === undefined) {
    check.problem(`${at}.${field}`, `is required when type is ${type}`);
    return null;
  }
  return { type, settings: o[field] };
}

export function headerModifier(check: RouteChecker, value: unknown, at: string): HeaderModifier | null {
  const o = check.mapping(value, at, ['set', 'add', 'remove']);
  if (o === null) return null;
  const seen = new Map<string, string>();
  const set = check.headerPairs(o.set, `${at}.set`, seen);
  const add = check.headerPairs(o.add, `${at}.add`, seen);
  const remove: string[] = [];
  check.list(o.remove, `${at}.remove`, MAX_MODIFIER_ENTRIES).forEach((name, i) => {
    const checked = check.modifiableName(name, `${at}.remove[${i}]`, seen);
    if (checked !== null) remove.push(checked);
  });
  if (set.length + add.length + remove.length === 0 && Object.keys(o).length === 0)
    check.problem(at, 'sets, adds and removes nothing: give set, add or remove, or drop the filter');
  return { set, add, remove };
}

function redirect(check: RouteChecker, value: unknown, at: string): RequestRedirect | null {
  const o = check.mapping(value, at, ['scheme', 'hostname', 'path', 'port', 'statusCode']);
  if (o === null) return null;
  const scheme =
    o.scheme === undefined ? null : check.oneOf(o.scheme, `${at}.scheme`, ['http', 'https'], null);
  const hostname = o.hostname === undefined ? null : check.hostname(o.hostname, `${at}.hostname`);
  const path = o.path === undefined ? null : check.pathModifier(o.path, `${at}.path`);
  const port = o.port === undefined ? null : check.integer(o.port, `${at}.port`, 1, 65_535);
  let statusCode = 302;
  if (o.statusCode !== undefined) {
    if (STATUS_CODES.includes(o.statusCode as number)) statusCode = o.statusCode as number;
    else
      check.problem(
        `${at}.statusCode`,
        `must be one of ${STATUS_CODES.join(', ')} (got ${showValue(o.statusCode)})`,
      );
  }
  return { scheme, hostname, path, port, statusCode };
}

function rewrite(check: RouteChecker, value: unknown, at: string): UrlRewrite | null {
  const o = check.mapping(value, at, ['hostname', 'path']);
  if (o === null) return null;
  if (o.hostname === undefined && o.path === undefined) check.problem(at, 'must set hostname or path');
  return {
    hostname: o.hostname === undefined ? null : check.hostname(o.hostname, `${at}.hostname`),
    path: o.path === undefined ? null : check.pathModifier(o.path, `${at}.path`),
  };
}

function requestMirror(ctx: RuleContext, value: unknown, at: string): RequestMirror | null {
  const { check } = ctx;
  const o = check.mapping(value, at, ['backendRef', 'percent', 'fraction']);
  if (o === null) return null;
  if (o.backendRef === undefined) check.problem(`${at}.backendRef`, 'is required (the shadow service)');
  const service =
    o.backendRef === undefined
      ? null
      : mirrorRef(check, o.backendRef, `${at}.backendRef`, ctx.namespace, ctx.services);
  let share: number | null = 1;
  if (o.percent !== undefined && o.fraction !== undefined) {
    check.problem(at, 'set percent or fraction, not both');
    share = null;
  } else if (o.percent !== undefined) {
    const percent = check.integer(o.percent, `${at}.percent`, 0, 100);
    share = percent === null ? null : percent / 100;
  } else if (o.fraction !== undefined) share = fraction(check, o.fraction, `${at}.fraction`);
  if (share === 0) {
    check.problem(at, 'mirrors nothing (0%): remove the filter to stop mirroring');
    return null;
  }
  return service === null || share === null ? null : { service, share };
}

function fraction(check: RouteChecker, value: unknown, at: string): number | null {
  const o = check.mapping(value, at, ['numerator', 'denominator']);
  if (o === null) return null;
  const numerator = check.integer(o.numerator, `${at}.numerator`, 0, 1_000_000);
  const denominator =
    o.denominator === undefined ? 100 : check.integer(o.denominator, `${at}.denominator`, 1, 1_000_000);
  if (numerator === null || denominator === null) return null;
  if (numerator > denominator) {
    check.problem(at, `numerator must not exceed denominator (got ${numerator}/${denominator})`);
    return null;
  }
  return numerator / denominator;
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
