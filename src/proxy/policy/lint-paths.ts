// The path-pattern half of lint: patterns that can never equal a normalized request path, absurd
// globs (the kind that used to hang the proxy, now merely pointless), and the conservative
// coverage tests the overlap analysis needs. Pure; lint.ts turns these into findings.
import type { PathPattern, PolicyAction } from './model.js';
import {
  escapedByte,
  isEncodedInPath,
  isLowerHex,
  isUnreservedByte,
  type NormalizedPath,
} from './normalize.js';
import { pathMatches } from './path-pattern.js';

/** More `**` than this in one pattern says nothing two would not; parse refuses far more. */
const MAX_SENSIBLE_DOUBLE_STARS = 2;

export type PathFindingCode =
  | 'never-matches'
  | 'redundant-wildcard'
  | 'many-wildcards'
  | 'matches-every-path';

export interface PathFinding {
  readonly severity: 'error' | 'warning';
  readonly code: PathFindingCode;
  readonly message: string;
}

/** Everything lint has to say about one path pattern of a rule with `action`. */
export function lintPathPattern(pattern: PathPattern, action: PolicyAction): PathFinding[] {
  const out: PathFinding[] = [];
  const shown = JSON.stringify(pattern.text);
  const dead = deadPathReason(pattern);
  if (dead !== null)
    out.push({ severity: 'error', code: 'never-matches', message: `path ${shown} can never match: ${dead}` });
  const segments = pattern.text.slice(1).split('/');
  const isMany = (i: number) => segments[i] === '**' || (segments[i] === '*' && i === segments.length - 1);
  if (pattern.kind === 'glob' && segments.some((_, i) => i > 0 && isMany(i) && isMany(i - 1))) {
    out.push({
      severity: 'warning',
      code: 'redundant-wildcard',
      message: `path ${shown}: adjacent "**" segments match exactly what one "**" does`,
    });
  }
  const doubleStars = segments.filter((s) => s === '**').length;
  if (doubleStars > MAX_SENSIBLE_DOUBLE_STARS) {
    out.push({
      severity: 'warning',
      code: 'many-wildcards',
      message: `path ${shown} has ${doubleStars} "**" segments; more than ${MAX_SENSIBLE_DOUBLE_STARS} is almost certainly a mistake`,
    });
  }
  if (matchesEveryPath(pattern)) {
    const tcp =
      action === 'DENY'
        ? ''
        : ', except that a rule with paths never matches opaque TCP (omit paths to match it too)';
    out.push({
      severity: 'warning',
      code: 'matches-every-path',
      message: `path ${shown} matches every request path: the same as omitting paths${tcp}`,
    });
  }
  return out;
}

/** `/*`, `/**`, `/**` + `/**`…: a pattern with no literal part at all. */
function matchesEveryPath(pattern: PathPattern): boolean {
  if (pattern.kind === 'prefix') return pattern.base === '';
  return pattern.kind === 'glob' && pattern.blocks.every((block) => block.length === 0);
}

/** Why a path pattern cannot match a normalized request path (see normalize.ts), or null. */
function deadPathReason(pattern: PathPattern): string | null {
  if (pattern.text === '/') return null;
  const literal = pattern.kind === 'prefix' ? pattern.base : pattern.text;
  if (literal === '') return null;
  const segments = literal.slice(1).split('/');
  if (segments.some((s) => s === '')) {
    return 'request paths are matched without empty segments or a trailing "/"';
  }
  if (segments.some((s) => s === '.' || s === '..')) {
    return 'request paths are normalized without "." or ".." segments';
  }
  return rewriteReason(literal);
}

/**
 * Why no normalized request path can contain `literal`: normalize.ts would have rewritten it (in
 * the order below, the first kind found), asked with normalize.ts's own predicates. Parse already
 * refused "?", "#", spaces and control characters; a "%" without two hex digits is not reported.
 */
function rewriteReason(literal: string): string | null {
  let escapesUnreserved = false;
  let escapesInLowerCase = false;
  let hasCharacterToEncode = false;
  for (let i = 0; i < literal.length; i++) {
    const value = escapedByte(literal, i);
    if (value >= 0) {
      escapesUnreserved ||= isUnreservedByte(value);
      escapesInLowerCase ||= isLowerHex(literal.charCodeAt(i + 1)) || isLowerHex(literal.charCodeAt(i + 2));
      i += 2;
    } else if (literal[i] !== '%' && isEncodedInPath(literal.charCodeAt(i))) {
      hasCharacterToEncode = true;
    }
  }
  if (escapesUnreserved) {
    return 'request paths have unreserved characters percent-decoded; write them plainly';
  }
  if (escapesInLowerCase) {
    return 'request paths have escapes in upper case (%2F, not %2f)';
  }
  if (hasCharacterToEncode) {
    return 'request paths have "\\"<>[]^`{|} and non-ASCII characters percent-encoded; write them as %XX';
  }
  return null;
}

/** True when `outer` surely matches every path `inner` matches; false when unsure. */
export function pathCovers(outer: PathPattern, inner: PathPattern): boolean {
  if (outer.text === inner.text) return true;
  if (inner.kind === 'exact') return pathMatches(outer, asRequestPath(inner));
  if (outer.kind !== 'prefix') return false;
  // A prefix covers any pattern whose literal head lies at or below its base.
  const head =
    inner.kind === 'prefix'
      ? inner.base
      : inner.text.slice(0, inner.text.lastIndexOf('/', inner.text.indexOf('*')));
  return outer.base === '' || head === outer.base || head.startsWith(`${outer.base}/`);
}

export function pathsMayIntersect(a: PathPattern, b: PathPattern): boolean {
  if (a.kind === 'exact') return pathMatches(b, asRequestPath(a));
  if (b.kind === 'exact') return pathMatches(a, asRequestPath(b));
  if (a.kind === 'prefix' && b.kind === 'prefix') return pathCovers(a, b) || pathCovers(b, a);
  return true;
}

/**
 * An exact pattern's text, matched as the request path it names. Not necessarily normalized (one
 * that is not can never match, which deadPathReason reports); the matcher only reads segments.
 */
function asRequestPath(exact: PathPattern): NormalizedPath {
  return exact.text as NormalizedPath;
}
