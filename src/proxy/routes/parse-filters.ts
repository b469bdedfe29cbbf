// HTTPRoute and GRPCRoute `filters`: each entry's `type` and the one settings field that goes
// with it, then the settings of the filters we support. Refused types say why.
import { showValue } from '../policy/match.js';
import type { HeaderModifier, RequestMirror, RequestRedirect, UrlRewrite } from './model.js';
import { mirrorRef } from './parse-refs.js';
import { MAX_MODIFIER_ENTRIES, type RouteChecker } from './parse-support.js';

export const MAX_FILTERS = 16;
const STATUS_CODES = [301, 302, 303, 307, 308];
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

export interface RuleContext {
  readonly check: RouteChecker;
  readonly route: string;
  readonly namespace: string;
  readonly services: ReadonlySet<string>;
}

export interface Filters {
  /** False when a filter was refused: then "no backendRefs" is not worth a second message. */
  ok: boolean;
  requestHeaders: HeaderModifier | null;
  responseHeaders: HeaderModifier | null;
  redirect: RequestRedirect | null;
  rewrite: UrlRewrite | null;
  mirrors: RequestMirror[];
}

export function httpFilters(ctx: RuleContext, value: unknown, at: string): Filters {
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
