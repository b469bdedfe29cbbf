// Compiles and matches caller principal patterns, and holds the helpers every pattern compiler
// reports with. Compilation checks syntax only and throws the first problem of one pattern
// (parse.ts collects them across the file); whether a pattern is sensible (can it ever match?) is
// lint.ts's business. Request paths are path-pattern.ts's.

import { quote, SigilError } from '../../spiffe/errors.js';
import { parseSpiffeId } from '../../spiffe/id.js';
import type { PrincipalPattern } from './model.js';

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

/** Shows a value found in a file: strings quoted, numbers and lists as written (`80`, `[]`). */
export function showValue(value: unknown, maxChars = 80): string {
  if (typeof value === 'string') return quote(value, maxChars);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}

export function policyError(field: string, message: string): SigilError {
  return new SigilError('ERR_POLICY_INVALID', `${field}: ${message}`, { field });
}
