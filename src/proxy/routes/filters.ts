// A rule's filters, as pure functions the outbound router calls: header modifiers on the raw
// request and response header lists, URLRewrite of the target and Host, and the answer of a
// RequestRedirect. Inputs are never modified; each returns a new list or string.
//
// Header modifiers apply remove, then set, then add. `set` replaces every field of that name with
// one; `add` appends a field line, which RFC 9110 §5.3 makes equal to appending ",value" to the
// existing value, as the Gateway API example shows.
import type { HeaderModifier, HttpMatch, HttpRule, PathModifier, RequestRedirect } from './model.js';

/** A modifier with its names lowercased once, cached per (frozen) modifier. */
interface CompiledModifier {
  /** Lowercased names whose existing fields are dropped: remove and set. */
  readonly drop: ReadonlySet<string>;
  /** set then add, as [name, value, …], and as latin1 buffers for undici's raw response headers. */
  readonly append: readonly string[];
  readonly appendRaw: readonly Buffer[];
}

const compiled = new WeakMap<HeaderModifier, CompiledModifier>();

function compile(mod: HeaderModifier): CompiledModifier {
  let c = compiled.get(mod);
  if (c === undefined) {
    const drop = new Set([...mod.remove, ...mod.set.map((h) => h.name)].map((n) => n.toLowerCase()));
    const append = [...mod.set, ...mod.add].flatMap((h) => [h.name, h.value]);
    c = { drop, append, appendRaw: append.map((t) => Buffer.from(t, 'latin1')) };
    compiled.set(mod, c);
  }
  return c;
}

/** RequestHeaderModifier on a flat [name, value, …] request header list. */
export function modifyRequestHeaders(mod: HeaderModifier, headers: readonly string[]): string[] {
  const { drop, append } = compile(mod);
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (drop.size > 0 && drop.has(headers[i]!.toLowerCase())) continue;
    out.push(headers[i]!, headers[i + 1]!);
  }
  for (let i = 0; i < append.length; i++) out.push(append[i]!);
  return out;
}

/** ResponseHeaderModifier on undici's raw response headers ([name, value, …] as Buffers). */
export function modifyResponseHeaders(mod: HeaderModifier, rawHeaders: readonly Buffer[]): Buffer[] {
  const { drop, appendRaw } = compile(mod);
  const out: Buffer[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (drop.size > 0 && drop.has(rawHeaders[i]!.toString('latin1').toLowerCase())) continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  for (let i = 0; i < appendRaw.length; i++) out.push(appendRaw[i]!);
  return out;
}

/**
 * The target after the rule's URLRewrite path (the query is kept); the target itself when the
 * rule rewrites no path. `match` is the match the request took (ReplacePrefixMatch replaces what
 * its PathPrefix matched).
 */
export function rewriteTarget(rule: Pick<HttpRule, 'rewrite'>, match: HttpMatch, target: string): string {
  const modifier = rule.rewrite?.path;
  if (modifier === undefined || modifier === null) return target;
  const queryStart = target.indexOf('?');
  const path = queryStart < 0 ? target : target.slice(0, queryStart);
  const query = queryStart < 0 ? '' : target.slice(queryStart);
  return modifyPath(modifier, match, path) + query;
}

/**
 * The path after a path modifier. ReplacePrefixMatch follows Gateway API's table: the prefix and
 * the replacement are taken without a trailing "/", and an empty result is "/" (prefix `/foo`,
 * replacement `/xyz`: `/foo/bar` → `/xyz/bar`, `/foo` → `/xyz`; replacement "" or "/": `/foo/bar` → `/bar`).
 */
export function modifyPath(modifier: PathModifier, match: HttpMatch, path: string): string {
  if (modifier.type === 'ReplaceFullPath') return modifier.value;
  // parse.ts allows ReplacePrefixMatch only on PathPrefix matches; anything else keeps the path.
  if (match.path.type !== 'PathPrefix') return path;
  const prefix = trimSlash(match.path.value);
  const rest = path.length >= prefix.length ? path.slice(prefix.length) : '';
  const result = trimSlash(modifier.value) + rest;
  return result === '' ? '/' : result;
}

function trimSlash(text: string): string {
  return text.endsWith('/') ? text.slice(0, -1) : text;
}

/** The request headers with Host set to `hostname` (URLRewrite hostname); added when absent. */
export function rewriteHost(headers: readonly string[], hostname: string): string[] {
  const out: string[] = [];
  let done = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (!done) out.push(name, hostname);
      done = true;
      continue;
    }
    out.push(name, headers[i + 1]!);
  }
  if (!done) out.push('host', hostname);
  return out;
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };

/**
 * The redirect a RequestRedirect rule answers with. Gateway API defaults: the request's scheme
 * (the listener's), host and path when unset; the port is the request's when neither scheme nor
 * port is set, the new scheme's well-known port when only the scheme is, and is left out of the
 * Location when it is the scheme's default (80 for http, 443 for https). The query is kept.
 * Without a Host header (and no hostname in the rule) the Location is the path alone.
 */
export function redirectResponse(
  redirect: RequestRedirect,
  match: HttpMatch,
  target: string,
  host: string | undefined,
  listenerScheme: 'http' | 'https',
): { status: number; location: string } {
  const queryStart = target.indexOf('?');
  const path = queryStart < 0 ? target : target.slice(0, queryStart);
  const query = queryStart < 0 ? '' : target.slice(queryStart);
  const newPath = redirect.path === null ? path : modifyPath(redirect.path, match, path);
  const { hostname: requestHost, port: requestPort } = splitHost(host);
  const hostname = redirect.hostname ?? requestHost;
  if (hostname === null) return { status: redirect.statusCode, location: newPath + query };
  const scheme = redirect.scheme ?? listenerScheme;
  const port =
    redirect.port ??
    (redirect.scheme !== null ? DEFAULT_PORTS[scheme]! : (requestPort ?? DEFAULT_PORTS[scheme]!));
  const portPart = port === DEFAULT_PORTS[scheme] ? '' : `:${port}`;
  return { status: redirect.statusCode, location: `${scheme}://${hostname}${portPart}${newPath}${query}` };
}

/** A Host header split into name and port; `[::1]:8080` keeps its brackets. */
function splitHost(host: string | undefined): { hostname: string | null; port: number | null } {
  if (host === undefined || host === '') return { hostname: null, port: null };
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(host.trim());
  if (match === null) return { hostname: null, port: null };
  return { hostname: match[1]!, port: match[2] === undefined ? null : Number(match[2]) };
}
