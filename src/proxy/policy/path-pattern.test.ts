import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSigilError } from '../../spiffe/errors.js';
import type { NormalizedPath } from './normalize.js';
import {
  compilePathPattern,
  MAX_PATH_PATTERN_CHARS,
  MAX_PATH_PATTERN_DOUBLE_STARS,
  MAX_PATH_PATTERN_SEGMENTS,
  pathMatches,
} from './path-pattern.js';

/**
 * The regular expressions path patterns compiled to before the segment matcher, kept as the
 * reference: same semantics by construction, exponential only on inputs far larger than these.
 */
function referenceRegex(input: string): RegExp {
  const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const segments = input.slice(1).split('/');
  if (!input.includes('*')) return new RegExp(`^${escapeRegex(input)}$`);
  if (input.endsWith('/*') && !input.slice(0, -1).includes('*')) {
    return new RegExp(`^${escapeRegex(input.slice(0, -2))}(?:/.*)?$`);
  }
  const parts = segments.map((segment, i) => {
    if (segment === '**' || (segment === '*' && i === segments.length - 1)) return '(?:/.*)?';
    if (segment === '*') return '/[^/]+';
    return `/${segment.split('*').map(escapeRegex).join('[^/]*')}`;
  });
  return new RegExp(`^${parts.join('')}$`);
}

const compile = (text: string) => compilePathPattern(text, 'paths[0]');

describe('pathMatches agrees with the regular expressions it replaces', () => {
  const patternSegment = fc.constantFrom('a', 'b', 'ab', '*', '**', 'a*', '*b', 'a*b', '*a*', 'x.y', '');
  const pattern = fc
    .array(patternSegment, { minLength: 1, maxLength: 6 })
    .map((segments) => `/${segments.join('/')}`)
    .filter((text) => {
      try {
        compile(text);
        return true;
      } catch {
        return false;
      }
    });
  // Normalized request paths: no empty segment (bar the root), no trailing "/".
  const path = fc
    .array(fc.constantFrom('a', 'b', 'ab', 'ba', 'aab', 'abb', 'x.y', 'axb'), { maxLength: 7 })
    .map((segments) => `/${segments.join('/')}`);

  it('on random patterns and paths', () => {
    fc.assert(
      fc.property(pattern, path, (text, requestPath) => {
        expect(pathMatches(compile(text), requestPath as NormalizedPath)).toBe(
          referenceRegex(text).test(requestPath),
        );
      }),
      { numRuns: 20_000 },
    );
  });

  it('ignores a trailing "/" on the request path', () => {
    fc.assert(
      fc.property(pattern, path, (text, requestPath) => {
        if (requestPath === '/') return;
        const compiled = compile(text);
        expect(pathMatches(compiled, `${requestPath}/` as NormalizedPath)).toBe(
          pathMatches(compiled, requestPath as NormalizedPath),
        );
      }),
      { numRuns: 5_000 },
    );
  });

  it.each([
    ['/u/*/edit', '/u/42/edit', true],
    ['/u/*/edit', '/u/4/2/edit', false],
    ['/u/**/edit', '/u/edit', true],
    ['/u/**/edit', '/u/4/2/edit', true],
    ['/**/z', '/z', true],
    ['/**/z', '/a/b/z', true],
    ['/**/z', '/a/b/zz', false],
    ['/a/**/b/**/c', '/a/x/b/y/b/c', true],
    ['/a/**/b/**/c', '/a/c/b', false],
    ['/static/**/*.css', '/static/a/b/site.css', true],
    ['/static/**/*.css', '/static/site.css.map', false],
    ['/v*/x', '/v/x', true],
    ['/a*b*c', '/abbbc', true],
    ['/a*b*c', '/acb', false],
    ['/**', '/', true],
    ['/**/', '/', true],
    ['/*', '/anything/at/all', true],
    ['/api/*', '/api', true],
    ['/api/*', '/api/', true],
    ['/api/*', '/apix', false],
    ['/admin', '/admin/', true],
    ['/admin', '/Admin', false],
    ['/', '/', true],
  ])('%s on %s: %s', (text, requestPath, expected) => {
    expect(pathMatches(compile(text), requestPath as NormalizedPath)).toBe(expected);
  });
});

describe('pathMatches is linear in the path, whatever the pattern', () => {
  // Well under 100ms each on a loaded 2-core machine; the regexes took minutes on a few hundred bytes.
  const BOUND_MS = 100;
  const longPath = `/${Array.from({ length: 4_096 }, () => 'a').join('/')}`;
  const longSegment = `/${'b'.repeat(8_190)}c`;

  it.each([
    ['the pattern that hung the proxy', '/**/**/**/**/**/**/**/**/**/**/z', longPath],
    [
      'the most "**" parse allows',
      `/${Array(MAX_PATH_PATTERN_DOUBLE_STARS).fill('**/a').join('/')}/z`,
      longPath,
    ],
    ['a block that almost matches everywhere', `/**/${Array(40).fill('a').join('/')}/b/**/z`, longPath],
    ['many "*" within a segment', '/*b*b*b*b*b*b*b*b*b*a*c', longSegment],
    ['"*" segments against one long segment', '/**/*b*b*b*/*/*c', longSegment],
  ])('%s against an 8 KB path', (_name, text, requestPath) => {
    expect(requestPath.length).toBeGreaterThanOrEqual(8_191);
    const pattern = compile(text);
    const started = performance.now();
    const matched = pathMatches(pattern, requestPath as NormalizedPath);
    const elapsedMs = performance.now() - started;
    expect(matched).toBe(false);
    expect(elapsedMs).toBeLessThan(BOUND_MS);
  });
});

describe('compilePathPattern bounds pattern size', () => {
  const error = (text: string) => {
    try {
      compile(text);
    } catch (err) {
      if (isSigilError(err, 'ERR_POLICY_INVALID')) return err.message;
      throw err;
    }
    throw new Error('expected ERR_POLICY_INVALID');
  };

  it('refuses a pattern longer than the limit, naming it', () => {
    const text = `/${'a'.repeat(MAX_PATH_PATTERN_CHARS)}`;
    expect(error(text)).toMatch(
      new RegExp(
        `^paths\\[0\\]: "/a{79}…" is ${MAX_PATH_PATTERN_CHARS + 1} characters long; at most ${MAX_PATH_PATTERN_CHARS}$`,
      ),
    );
  });

  it('refuses too many segments and too many "**"', () => {
    const segments = `/${Array(MAX_PATH_PATTERN_SEGMENTS + 1)
      .fill('a')
      .join('/')}`;
    expect(error(segments)).toContain(
      `has ${MAX_PATH_PATTERN_SEGMENTS + 1} segments; at most ${MAX_PATH_PATTERN_SEGMENTS}`,
    );
    const stars = `/${Array(MAX_PATH_PATTERN_DOUBLE_STARS + 1)
      .fill('**')
      .join('/')}`;
    expect(error(stars)).toContain(
      `has ${MAX_PATH_PATTERN_DOUBLE_STARS + 1} "**" segments; at most ${MAX_PATH_PATTERN_DOUBLE_STARS}`,
    );
  });

  it('accepts patterns at every limit', () => {
    expect(compile(`/${'a'.repeat(MAX_PATH_PATTERN_CHARS - 1)}`).kind).toBe('exact');
    expect(compile(`/${Array(MAX_PATH_PATTERN_SEGMENTS).fill('*').join('/')}`).kind).toBe('glob');
  });
});
