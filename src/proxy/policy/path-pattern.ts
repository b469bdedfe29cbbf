// Compiles and matches request-path patterns. Globs used to become regular expressions, and
// `/**/**/**/**/**/**/**/**/**/**/z` against a few hundred bytes of path backtracked for minutes
// with the event loop blocked (not even SIGTERM got through). This is a segment matcher instead:
// the `**`s cut a pattern into blocks of single-segment matchers; the first block must match at the
// start, the last at the end, and each block between at its leftmost place (leftmost is always
// safe, since whatever follows a block can only gain from starting earlier). Each block tries each
// segment once, and `*` inside a segment is matched the same greedy way, so matching costs at most
// path length × pattern length, and patterns are bounded at parse time. It allocates nothing.
import { quote } from '../../spiffe/errors.js';
import { policyError, showValue } from './match.js';
import type { PathPattern, SegmentMatcher } from './model.js';
import type { NormalizedPath } from './normalize.js';

/** Longer patterns are refused: far beyond any route, and they bound the cost of a match. */
export const MAX_PATH_PATTERN_CHARS = 1_024;
/** Segments per pattern; real routes have a handful. */
export const MAX_PATH_PATTERN_SEGMENTS = 64;
/** `**` segments per pattern; more than two is already absurd (lint says so), this is the hard cap. */
export const MAX_PATH_PATTERN_DOUBLE_STARS = 16;

const ANY_SUFFIX = '/*';
const SLASH = 0x2f;
/** A whole-segment `*`: exactly one non-empty segment. */
const ONE_SEGMENT: SegmentMatcher = Object.freeze({ kind: 'one' });

/** Compiles a path pattern (see model.ts); throws ERR_POLICY_INVALID naming `field` and the rule broken. */
export function compilePathPattern(input: unknown, field: string): PathPattern {
  const fail = (message: string) => policyError(field, message);
  if (typeof input !== 'string') throw fail(`must be a path string (got ${showValue(input)})`);
  if (input.length > MAX_PATH_PATTERN_CHARS) {
    throw fail(`${quote(input)} is ${input.length} characters long; at most ${MAX_PATH_PATTERN_CHARS}`);
  }
  if (!input.startsWith('/')) throw fail(`${quote(input)} must start with "/"`);
  if (input.includes('?') || input.includes('#')) {
    throw fail(`${quote(input)} must not contain "?" or "#" (only the path is matched)`);
  }
  for (const c of input) {
    const code = c.charCodeAt(0);
    if (code <= 0x20 || code === 0x7f || /\s/.test(c)) {
      throw fail(`${quote(input)} must not contain whitespace or control characters`);
    }
  }
  const segments = input.slice(1).split('/');
  if (segments.length > MAX_PATH_PATTERN_SEGMENTS) {
    throw fail(`${quote(input)} has ${segments.length} segments; at most ${MAX_PATH_PATTERN_SEGMENTS}`);
  }
  let doubleStars = 0;
  for (const segment of segments) {
    if (segment === '**') doubleStars++;
    else if (segment.includes('**')) {
      throw fail(`${quote(input)}: "**" must be a whole segment (e.g. "/api/**/edit")`);
    }
  }
  if (doubleStars > MAX_PATH_PATTERN_DOUBLE_STARS) {
    throw fail(`${quote(input)} has ${doubleStars} "**" segments; at most ${MAX_PATH_PATTERN_DOUBLE_STARS}`);
  }
  if (!input.includes('*')) return { kind: 'exact', text: input, base: input, blocks: [] };
  if (input.endsWith(ANY_SUFFIX) && !input.slice(0, -1).includes('*')) {
    return { kind: 'prefix', text: input, base: input.slice(0, -ANY_SUFFIX.length), blocks: [] };
  }
  return { kind: 'glob', text: input, base: '', blocks: compileBlocks(segments) };
}

/**
 * The blocks of single-segment matchers between `**`s: segments a, **, b, c, ** give
 * [[a], [b, c], []]. A trailing `*` keeps its prefix meaning inside a glob too (any number of
 * segments), so it cuts a block like `**`; consecutive `**` cut once.
 */
function compileBlocks(segments: readonly string[]): SegmentMatcher[][] {
  const blocks: SegmentMatcher[][] = [[]];
  segments.forEach((segment, i) => {
    const isMany = segment === '**' || (segment === '*' && i === segments.length - 1);
    if (isMany) {
      if (blocks.length === 1 || blocks.at(-1)!.length > 0) blocks.push([]);
      return;
    }
    blocks.at(-1)!.push(compileSegment(segment));
  });
  return blocks;
}

function compileSegment(segment: string): SegmentMatcher {
  if (segment === '*') return ONE_SEGMENT;
  if (!segment.includes('*')) return { kind: 'literal', text: segment };
  const parts = segment.split('*');
  return { kind: 'wildcard', prefix: parts[0]!, middle: parts.slice(1, -1), suffix: parts.at(-1)! };
}

/**
 * Whether a normalized request path matches. A trailing "/" does not change the answer: `/api/`
 * matches what `/api` matches (the app still receives the "/").
 */
export function pathMatches(pattern: PathPattern, path: NormalizedPath): boolean {
  const end = path.length > 1 && path.charCodeAt(path.length - 1) === SLASH ? path.length - 1 : path.length;
  switch (pattern.kind) {
    case 'exact':
      return end === pattern.text.length && path.startsWith(pattern.text);
    case 'prefix': {
      const { base } = pattern;
      if (base === '') return true;
      return (
        end >= base.length &&
        path.startsWith(base) &&
        (end === base.length || path.charCodeAt(base.length) === SLASH)
      );
    }
    case 'glob':
      return globMatches(pattern.blocks, path, end);
  }
}

/**
 * Segments are the runs between "/" in path[0, end); the root path "/" is one empty segment. A
 * position is where a segment starts; past the last segment it is end + 1.
 */
function globMatches(blocks: readonly (readonly SegmentMatcher[])[], path: string, end: number): boolean {
  const last = blocks.length - 1;
  let at = matchBlock(blocks[0]!, path, 1, end);
  if (last === 0) return at === end + 1;
  for (let b = 1; b < last && at >= 0; b++) at = findBlock(blocks[b]!, path, at, end);
  if (at < 0) return false;
  const tail = blocks[last]!;
  if (tail.length === 0) return true;
  const start = startOfLastSegments(path, end, tail.length);
  return start >= at && matchBlock(tail, path, start, end) === end + 1;
}

/** Matches `block` segment by segment from `at`; returns the position after it, or -1. */
function matchBlock(block: readonly SegmentMatcher[], path: string, at: number, end: number): number {
  let from = at;
  for (const matcher of block) {
    if (from > end) return -1;
    const to = segmentEnd(path, from, end);
    if (!segmentMatches(matcher, path, from, to)) return -1;
    from = to + 1;
  }
  return from;
}

/** The leftmost place at or after `at` where `block` matches; returns the position after it, or -1. */
function findBlock(block: readonly SegmentMatcher[], path: string, at: number, end: number): number {
  for (let from = at; from <= end; from = segmentEnd(path, from, end) + 1) {
    const after = matchBlock(block, path, from, end);
    if (after >= 0) return after;
  }
  return -1;
}

function segmentEnd(path: string, from: number, end: number): number {
  const slash = path.indexOf('/', from);
  return slash === -1 || slash > end ? end : slash;
}

/** Where the last `count` segments start, or -1 when there are fewer. */
function startOfLastSegments(path: string, end: number, count: number): number {
  let seen = 0;
  for (let i = end - 1; i >= 0; i--) {
    if (path.charCodeAt(i) === SLASH && ++seen === count) return i + 1;
  }
  return -1;
}

function segmentMatches(matcher: SegmentMatcher, path: string, from: number, to: number): boolean {
  switch (matcher.kind) {
    case 'literal':
      return to - from === matcher.text.length && path.startsWith(matcher.text, from);
    case 'one':
      return to > from;
    case 'wildcard': {
      const { prefix, middle, suffix } = matcher;
      const tailAt = to - suffix.length;
      if (
        tailAt - from < prefix.length ||
        !path.startsWith(prefix, from) ||
        !path.startsWith(suffix, tailAt)
      ) {
        return false;
      }
      // Each middle piece at its leftmost place, as for blocks: later pieces can only gain.
      let at = from + prefix.length;
      for (const piece of middle) {
        const found = indexWithin(path, piece, at, tailAt);
        if (found < 0) return false;
        at = found + piece.length;
      }
      return true;
    }
  }
}

/** indexOf bounded to [from, limit): the plain one would scan the rest of the path every time. */
function indexWithin(path: string, piece: string, from: number, limit: number): number {
  for (let i = from; i + piece.length <= limit; i++) if (path.startsWith(piece, i)) return i;
  return -1;
}
