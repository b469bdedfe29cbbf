// Compiles and matches the two pattern kinds a rule holds: caller principals and request paths.
// Compilation checks syntax only and throws the first problem of one pattern (parse.ts collects
// them across the file); whether a pattern is sensible (can it ever match?) is lint.ts's business.
// Request paths are normalized before matching so that `/admin/../admin`, `//admin`, `/admin/` and
// `/%61dmin` cannot slip past a DENY on `/admin`.

import { quote, SigilError } from '../../spiffe/errors.js';
import { parseSpiffeId } from '../../spiffe/id.js';
import type { PathPattern, PrincipalPattern } from './model.js';

/** A caller reduced to what patterns compare; null for an unauthenticated caller. */
export interface Caller {
  readonly trustDomain: string;
  /** '' for a trust domain ID, otherwise begins with "/". */
  readonly path: string;
}

const ANY_SUFFIX = '/*';

export function compilePrincipalPattern(input: unknown, field: string): PrincipalPattern {
  if (typeof input !== 'string') {
    throw policyError(field, `must be a SPIFFE ID pattern string (got ${showValue(input)})`);
  }
  if (input === '*') return { kind: 'any', text: input };
  const isPrefix = input.endsWith(ANY_SUFFIX);
  const base = isPrefix ? input.slice(0, -ANY_SUFFIX.length) : input;
  if (base.includes('*')) {
    throw policyError(
      field,
      `${quote(input)}: "*" is allowed only as the whole pattern or a trailing "/*" (e.g. "spiffe://example.org/ns/*")`,
    );
  }
  // parseSpiffeId's message already starts with the field and quotes the value.
  const id = parseSpiffeId(base, field);
  const trustDomain = id.trustDomain.name;
  if (id.isTrustDomainId) return { kind: 'domain', text: input, trustDomain };
  return { kind: isPrefix ? 'prefix' : 'exact', text: input, trustDomain, path: id.path };
}

/** Callers already parsed: a sidecar sees few distinct principals, and parsing is per request otherwise. */
const callers = new Map<string, Caller | null>();
const MAX_CACHED_CALLERS = 1_024;

/** Reduces a verified SPIFFE ID to a Caller; anything that does not parse counts as unauthenticated. */
export function callerOf(principal: string | null): Caller | null {
  if (principal === null) return null;
  const cached = callers.get(principal);
  if (cached !== undefined) return cached;
  let caller: Caller | null;
  try {
    const id = parseSpiffeId(principal);
    caller = { trustDomain: id.trustDomain.name, path: id.path };
  } catch {
    // Not a SPIFFE ID: treating it as unauthenticated is the safe reading, since no positive
    // pattern (not even "*") then matches, while not_principals still do.
    caller = null;
  }
  if (callers.size >= MAX_CACHED_CALLERS) callers.clear();
  callers.set(principal, caller);
  return caller;
}

export function principalMatches(pattern: PrincipalPattern, caller: Caller | null): boolean {
  if (caller === null) return false;
  switch (pattern.kind) {
    case 'any':
      return true;
    case 'domain':
      return caller.trustDomain === pattern.trustDomain;
    case 'prefix':
      return (
        caller.trustDomain === pattern.trustDomain &&
        (caller.path === pattern.path || caller.path.startsWith(`${pattern.path}/`))
      );
    case 'exact':
      return caller.trustDomain === pattern.trustDomain && caller.path === pattern.path;
  }
}

export function compilePathPattern(input: unknown, field: string): PathPattern {
  if (typeof input !== 'string') throw policyError(field, `must be a path string (got ${showValue(input)})`);
  if (!input.startsWith('/')) throw policyError(field, `${quote(input)} must start with "/"`);
  if (/[?#]/.test(input)) {
    throw policyError(field, `${quote(input)} must not contain "?" or "#" (only the path is matched)`);
  }
  if (/\s/.test(input) || [...input].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw policyError(field, `${quote(input)} must not contain whitespace or control characters`);
  }
  const segments = input.slice(1).split('/');
  for (const segment of segments) {
    if (segment.includes('**') && segment !== '**') {
      throw policyError(field, `${quote(input)}: "**" must be a whole segment (e.g. "/api/**/edit")`);
    }
  }
  if (!input.includes('*')) {
    return { kind: 'exact', text: input, base: input, regex: new RegExp(`^${escapeRegex(input)}$`) };
  }
  if (input.endsWith(ANY_SUFFIX) && !input.slice(0, -1).includes('*')) {
    const base = input.slice(0, -ANY_SUFFIX.length);
    return { kind: 'prefix', text: input, base, regex: new RegExp(`^${escapeRegex(base)}(?:/.*)?$`) };
  }
  const parts = segments.map((segment, i) => {
    // A trailing "*" keeps its prefix meaning inside a glob too, so one rule covers both forms.
    if (segment === '**' || (segment === '*' && i === segments.length - 1)) return '(?:/.*)?';
    if (segment === '*') return '/[^/]+';
    return `/${segment.split('*').map(escapeRegex).join('[^/]*')}`;
  });
  return { kind: 'glob', text: input, base: '', regex: new RegExp(`^${parts.join('')}$`) };
}

/**
 * The path patterns are matched against: query and fragment dropped, unreserved characters
 * percent-decoded, empty and "." segments removed, ".." resolved, trailing "/" dropped. Returns
 * null for a request target that is not in origin form (no leading "/").
 */
export function normalizeRequestPath(target: string): string | null {
  const end = target.search(/[?#]/);
  const raw = end === -1 ? target : target.slice(0, end);
  if (!raw.startsWith('/')) return null;
  const decoded = raw.replace(/%([0-9A-Fa-f]{2})/g, (encoded, hex: string) => {
    const char = String.fromCharCode(Number.parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(char) ? char : encoded.toUpperCase();
  });
  const out: string[] = [];
  for (const segment of decoded.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') out.pop();
    else out.push(segment);
  }
  return `/${out.join('/')}`;
}

export function pathMatches(pattern: PathPattern, normalizedPath: string): boolean {
  return pattern.regex.test(normalizedPath);
}

/** Shows a value found in a file: strings quoted, numbers and lists as written (`80`, `[]`). */
export function showValue(value: unknown, maxChars = 80): string {
  if (typeof value === 'string') return quote(value, maxChars);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}

export function policyError(field: string, message: string): SigilError {
  return new SigilError('ERR_POLICY_INVALID', `${field}: ${message}`, { field });
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
