// The value checks route parsing is made of. Each reports `<route>: <dotted path>: <problem>` onto
// one shared list and returns null (or a fallback), so one pass reports every problem of a file.
// The limits are Gateway API's CRD validation limits unless a comment says otherwise.
import { MAX_TIMER_DELAY_MS } from '../../spiffe/clock.js';
import { showValue } from '../policy/match.js';
import type { HeaderPair, PathModifier, ValueMatch } from './model.js';
import { compileRouteRegex } from './regex.js';

export type Raw = Record<string, unknown>;

/** RFC 9110 token, as Gateway API's HTTPHeaderName. */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
/** Visible ASCII, space and tab, Latin-1 text: no CR, LF or NUL that could split a header. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** RFC 1123 subdomain, lowercase (Gateway API PreciseHostname). */
const HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Characters Gateway API allows in an Exact/PathPrefix path value, and percent escapes. */
const PATH_VALUE = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;
const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const DURATION_PART = /([0-9]{1,5})(ms|h|m|s)/g;
const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

export const MAX_HEADER_NAME = 256;
export const MAX_HEADER_VALUE = 4096;
export const MAX_PATH = 1024;
export const MAX_HOSTNAME = 253;
/** Matches, filters, set/add/remove entries, backends: Gateway API's maxItems for each. */
export const MAX_HEADER_MATCHES = 16;
export const MAX_MODIFIER_ENTRIES = 16;

/**
 * Headers a route may not set, add or remove: they frame the message (changing them would
 * desynchronise the connection) or are the proxy's own; Host is changed with URLRewrite hostname.
 */
const RESERVED_HEADERS = new Set([
  'connection',
  'content-length',
  'host',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export class RouteChecker {
  /** Prefixed to every problem: `HTTPRoute default/web`. */
  route = '';

  constructor(readonly problems: string[]) {}

  problem(at: string, message: string): void {
    this.problems.push(`${this.route === '' ? '' : `${this.route}: `}${at}: ${message}`);
  }

  /** A mapping whose keys are in `known`; `refused` keys get their own message. */
  mapping(
    value: unknown,
    at: string,
    known: readonly string[],
    refused: Readonly<Record<string, string>> = {},
  ): Raw | null {
    if (!isMapping(value)) {
      this.problem(at, `must be a mapping (got ${showValue(value)})`);
      return null;
    }
    for (const key of Object.keys(value)) {
      const where = at === '' ? key : `${at}.${key}`;
      if (refused[key] !== undefined) this.problem(where, refused[key]!);
      else if (!known.includes(key))
        this.problem(where, `unknown or unsupported field (supported: ${known.join(', ')})`);
    }
    return value;
  }

  /** An optional list of at most `max` items; absent reads as []. */
  list(value: unknown, at: string, max: number): unknown[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.problem(at, `must be a list (got ${showValue(value)})`);
      return [];
    }
    if (value.length > max) {
      this.problem(at, `must have at most ${max} items (got ${value.length})`);
      return value.slice(0, max);
    }
    return value;
  }

  string(value: unknown, at: string, max: number, min = 1): string | null {
    if (typeof value !== 'string') {
      this.problem(at, value === undefined ? 'is required' : `must be a string (got ${showValue(value)})`);
      return null;
    }
    if (value.length < min || value.length > max) {
      this.problem(at, `must be ${min} to ${max} characters long (got ${value.length})`);
      return null;
    }
    return value;
  }

  integer(value: unknown, at: string, min: number, max: number): number | null {
    if (Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max)
      return value as number;
    this.problem(at, `must be a whole number from ${min} to ${max} (got ${showValue(value)})`);
    return null;
  }

  oneOf<T extends string>(value: unknown, at: string, allowed: readonly T[], fallback: T | null): T | null {
    if (value === undefined && fallback !== null) return fallback;
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    this.problem(at, `must be one of ${allowed.join(', ')} (got ${showValue(value)})`);
    return null;
  }

  headerName(value: unknown, at: string): string | null {
    const name = this.string(value, at, MAX_HEADER_NAME);
    if (name === null) return null;
    if (!HEADER_NAME.test(name)) {
      this.problem(at, `${showValue(name)} is not a header name (letters, digits and !#$%&'*+-.^_\`|~)`);
      return null;
    }
    return name;
  }

  headerValue(value: unknown, at: string, min = 1): string | null {
    const text = this.string(value, at, MAX_HEADER_VALUE, min);
    if (text === null) return null;
    if (!HEADER_VALUE.test(text)) {
      this.problem(at, 'must not hold control characters (CR, LF, NUL…)');
      return null;
    }
    return text;
  }

  hostname(value: unknown, at: string): string | null {
    const name = this.string(value, at, MAX_HOSTNAME);
    if (name === null) return null;
    if (!HOSTNAME.test(name)) {
      this.problem(at, `${showValue(name)} is not a lowercase DNS name (RFC 1123), without port or wildcard`);
      return null;
    }
    return name;
  }

  /** An Exact or PathPrefix path value, as Gateway API validates it. */
  pathValue(value: unknown, at: string): string | null {
    const path = this.string(value, at, MAX_PATH);
    if (path === null) return null;
    const bad = pathProblem(path);
    if (bad !== null) {
      this.problem(at, `${showValue(path)} ${bad}`);
      return null;
    }
    return path;
  }

  regex(value: unknown, at: string): RegExp | null {
    if (typeof value !== 'string') {
      this.problem(at, value === undefined ? 'is required' : `must be a string (got ${showValue(value)})`);
      return null;
    }
    const compiled = compileRouteRegex(value);
    if (!compiled.ok) {
      this.problem(at, `${showValue(value)}: ${compiled.reason}`);
      return null;
    }
    return compiled.regex;
  }

  /**
   * A GEP-2257 duration in milliseconds ("0s" is 0). Bounded by the longest timer node can arm,
   * about 24.8 days, since a longer one would fire at once.
   */
  duration(value: unknown, at: string): number | null {
    if (typeof value !== 'string' || !DURATION.test(value)) {
      this.problem(
        at,
        `must be a Gateway API duration: 1 to 4 parts of up to 5 digits and a unit h, m, s or ms, e.g. "10s" or "1m30s" (got ${showValue(value)})`,
      );
      return null;
    }
    let ms = 0;
    for (const [, amount, unit] of value.matchAll(DURATION_PART)) ms += Number(amount) * UNIT_MS[unit!]!;
    if (ms > MAX_TIMER_DELAY_MS) {
      this.problem(at, `must be at most 596h (got ${showValue(value)})`);
      return null;
    }
    return ms;
  }

  /** HTTPHeaderMatch / GRPCHeaderMatch: names lowercased, each name at most once. */
  headerMatches(value: unknown, at: string): ValueMatch[] {
    const out: ValueMatch[] = [];
    const seen = new Map<string, number>();
    this.list(value, at, MAX_HEADER_MATCHES).forEach((item, i) => {
      const match = this.valueMatch(item, `${at}[${i}]`, (v, a) => this.headerName(v, a), MAX_HEADER_VALUE);
      if (match === null) return;
      const name = match.name.toLowerCase();
      const first = seen.get(name);
      if (first !== undefined) {
        // Gateway API ignores later entries for a name; refusing says so instead of hiding it.
        this.problem(
          `${at}[${i}].name`,
          `${showValue(match.name)} repeats ${at}[${first}] (names are case-insensitive)`,
        );
        return;
      }
      seen.set(name, i);
      out.push({ ...match, name });
    });
    return out;
  }

  /** One `{type: Exact|RegularExpression, name, value}`; the name is checked by `name`. */
  valueMatch(
    item: unknown,
    at: string,
    name: (value: unknown, at: string) => string | null,
    maxValue: number,
  ): ValueMatch | null {
    const o = this.mapping(item, at, ['type', 'name', 'value']);
    if (o === null) return null;
    const type = this.oneOf(o.type, `${at}.type`, ['Exact', 'RegularExpression'], 'Exact');
    const checkedName = name(o.name, `${at}.name`);
    if (type === 'RegularExpression') {
      const regex = this.regex(o.value, `${at}.value`);
      return checkedName === null || regex === null ? null : { type, name: checkedName, regex };
    }
    const value = this.string(o.value, `${at}.value`, maxValue);
    if (value !== null && !HEADER_VALUE.test(value))
      this.problem(`${at}.value`, 'must not hold control characters');
    return checkedName === null || value === null || type === null
      ? null
      : { type, name: checkedName, value };
  }

  /** RequestHeaderModifier / ResponseHeaderModifier lists. */
  headerPairs(value: unknown, at: string, seen: Map<string, string>): HeaderPair[] {
    const out: HeaderPair[] = [];
    this.list(value, at, MAX_MODIFIER_ENTRIES).forEach((item, i) => {
      const o = this.mapping(item, `${at}[${i}]`, ['name', 'value']);
      if (o === null) return;
      const name = this.modifiableName(o.name, `${at}[${i}].name`, seen);
      const headerValue = this.headerValue(o.value, `${at}[${i}].value`, 0);
      if (name !== null && headerValue !== null) out.push({ name, value: headerValue });
    });
    return out;
  }

  /** A header name a modifier may touch, once per modifier (`seen`: lowercase name → where). */
  modifiableName(value: unknown, at: string, seen: Map<string, string>): string | null {
    const name = this.headerName(value, at);
    if (name === null) return null;
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower)) {
      const hint = lower === 'host' ? "; change it with a URLRewrite filter's hostname" : '';
      this.problem(
        at,
        `${showValue(name)} frames the message or routes it and cannot be changed here${hint}`,
      );
      return null;
    }
    const first = seen.get(lower);
    if (first !== undefined) {
      this.problem(at, `${showValue(name)} is already named at ${first} (names are case-insensitive)`);
      return null;
    }
    seen.set(lower, at);
    return name;
  }

  /** HTTPPathModifier of RequestRedirect and URLRewrite. */
  pathModifier(value: unknown, at: string): PathModifier | null {
    const o = this.mapping(value, at, ['type', 'replaceFullPath', 'replacePrefixMatch']);
    if (o === null) return null;
    const type = this.oneOf(o.type, `${at}.type`, ['ReplaceFullPath', 'ReplacePrefixMatch'], null);
    if (type === null) return null;
    const field = type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
    const other = type === 'ReplaceFullPath' ? 'replacePrefixMatch' : 'replaceFullPath';
    if (o[other] !== undefined) this.problem(`${at}.${other}`, `must not be set when type is ${type}`);
    const raw = o[field];
    if (raw === undefined) {
      this.problem(`${at}.${field}`, `is required when type is ${type}`);
      return null;
    }
    // An empty replacePrefixMatch is allowed: it strips the prefix (Gateway API's table).
    if (raw === '' && type === 'ReplacePrefixMatch') return { type, value: '' };
    const path = this.pathValue(raw, `${at}.${field}`);
    return path === null ? null : { type, value: path };
  }
}

/** Why a path value is refused (Gateway API's rules for HTTPPathMatch), or null. */
function pathProblem(path: string): string | null {
  if (!path.startsWith('/')) return 'must start with "/"';
  if (!PATH_VALUE.test(path)) return 'holds characters not allowed in a path (spaces, "?", "#", …)';
  for (const bad of ['//', '/./', '/../', '%2f', '%2F'])
    if (path.includes(bad)) return `must not contain ${JSON.stringify(bad)}`;
  if (path.endsWith('/..') || path.endsWith('/.')) return 'must not end with "/." or "/.."';
  return null;
}

export function isMapping(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value) || value instanceof RegExp)
    return value;
  for (const child of Object.values(value)) deepFreeze(child);
  return Object.freeze(value);
}
