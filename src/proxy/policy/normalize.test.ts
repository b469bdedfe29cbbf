import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkPathNormalization,
  DEFAULT_PATH_NORMALIZATION,
  type NormalizedTarget,
  normalizeRequestTarget,
  type PathNormalization,
} from './normalize.js';

const UNESCAPE: PathNormalization = { ...DEFAULT_PATH_NORMALIZATION, escapedSlashes: 'unescape' };
const KEEP_ALL: PathNormalization = {
  escapedSlashes: 'keep',
  pathParameters: 'keep',
  doubleEncoding: 'keep',
};

function refusal(target: string, options?: PathNormalization): string {
  const result = normalizeRequestTarget(target, options);
  if (result.ok) throw new Error(`expected ${JSON.stringify(target)} to be refused, got ${result.target}`);
  return result.reason;
}

function targetOf(target: string, options?: PathNormalization): string {
  const result = normalizeRequestTarget(target, options);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(target)} to pass: ${result.message}`);
  return result.target;
}

describe('normalizeRequestTarget: the bypasses of issue 9 and their relatives are refused by default', () => {
  it.each([
    ['/admin%2fx', 'escaped-slash'],
    ['/admin%2Fx', 'escaped-slash'],
    ['/api/..%2fadmin/x', 'escaped-slash'],
    ['/api/%2e%2e%2fadmin', 'escaped-slash'],
    ['/admin%5cx', 'escaped-slash'],
    ['/admin%5C..%5Cx', 'escaped-slash'],
    ['/admin\\x', 'backslash'],
    ['/api\\..\\admin', 'backslash'],
    ['/admin;x=1/y', 'path-parameter'],
    ['/admin;/x', 'path-parameter'],
    ['/admin%3bx', 'path-parameter'],
    ['/admin%00', 'control-character'],
    ['/admin%0d%0aX-Injected:%201', 'control-character'],
    ['/admin%7f', 'control-character'],
    ['/admin\u0000', 'control-character'],
    ['/admin x', 'control-character'],
    ['/admin%252f', 'double-encoding'],
    ['/admin%252F', 'double-encoding'],
    ['/admin%25%32%66', 'double-encoding'],
    ['/admin%2525', 'double-encoding'],
    ['/admin%2', 'invalid-percent-encoding'],
    ['/admin%zz', 'invalid-percent-encoding'],
    ['/admin%%32%66', 'invalid-percent-encoding'],
    ['/admin#x', 'fragment'],
    ['/admin?x#y', 'fragment'],
    ['http://app/admin', 'not-origin-form'],
    ['admin', 'not-origin-form'],
    ['', 'not-origin-form'],
    ['/admin\u0100', 'invalid-character'],
  ])('%s: %s', (target, reason) => {
    expect(refusal(target)).toBe(reason);
  });

  it('names the rule, the value and the option that would change it', () => {
    expect(normalizeRequestTarget('/admin%2fx')).toEqual({
      ok: false,
      reason: 'escaped-slash',
      message:
        'request target "/admin%2fx" contains an encoded "/" (%2F) (path_normalization.escaped_slashes: reject)',
    });
    const long = normalizeRequestTarget(`/${'a'.repeat(200)}%00`) as Extract<NormalizedTarget, { ok: false }>;
    expect(long.message).toContain('…"');
    expect(long.message.length).toBeLessThan(200);
  });
});

describe('normalizeRequestTarget: what passes is rewritten to the one form policy and app share', () => {
  it.each([
    ['/api/v1/users', '/api/v1/users'],
    ['/', '/'],
    ['/admin/', '/admin/'],
    ['//admin', '/admin'],
    ['/a//b///c', '/a/b/c'],
    ['/./admin', '/admin'],
    ['/x/../admin', '/admin'],
    ['/x/%2e%2e/admin', '/admin'],
    ['/x/%2E./admin', '/admin'],
    ['/../../admin', '/admin'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/a/..', '/'],
    ['/%61dmin', '/admin'],
    ['/%41DMIN', '/ADMIN'],
    ['/ADMIN', '/ADMIN'],
    ['/a%7e%2D%5f', '/a~-_'],
    ['/a%3a%40', '/a%3A%40'],
    ['/a%c3%a9', '/a%C3%A9'],
    ['/a{b}|c^`"<>[]', '/a%7Bb%7D%7Cc%5E%60%22%3C%3E%5B%5D'],
    ['/caf\u00c3\u00a9', '/caf%C3%A9'],
    ["/a!$&'()*+,=:@", "/a!$&'()*+,=:@"],
    ['/.well-known/x', '/.well-known/x'],
    ['/..a/b.', '/..a/b.'],
    ['/admin?x=%2f&y=..;z', '/admin?x=%2f&y=..;z'],
    ['/a/../b?', '/b?'],
    ['/?q', '/?q'],
    ['/50%25off', '/50%25off'],
  ])('%s -> %s', (input, expected) => {
    expect(targetOf(input)).toBe(expected);
  });

  it('splits the normalized path from the untouched query', () => {
    expect(normalizeRequestTarget('//a/./b?c=/d/../e')).toEqual({
      ok: true,
      path: '/a/b',
      target: '/a/b?c=/d/../e',
    });
    expect(normalizeRequestTarget('*')).toEqual({ ok: true, path: null, target: '*' });
  });

  it('returns a canonical target as the very string it was given (no copy on the hot path)', () => {
    const target = '/api/v1/users?page=2';
    const result = normalizeRequestTarget(target);
    expect(result.ok && result.target).toBe(target);
  });

  it('escaped_slashes: unescape reads %2F, %5C and "\\" as "/" before resolving the path', () => {
    expect(targetOf('/admin%2fx', UNESCAPE)).toBe('/admin/x');
    expect(targetOf('/api/..%2fadmin/x', UNESCAPE)).toBe('/admin/x');
    expect(targetOf('/admin%5Cx', UNESCAPE)).toBe('/admin/x');
    expect(targetOf('/api\\..\\admin', UNESCAPE)).toBe('/admin');
    // Unescaping does not relax the other rules.
    expect(refusal('/admin;x', UNESCAPE)).toBe('path-parameter');
    expect(refusal('/admin%252f', UNESCAPE)).toBe('double-encoding');
  });

  it('escaped_slashes: keep leaves them as characters of their segment, upper-cased and encoded', () => {
    expect(targetOf('/admin%2fx', KEEP_ALL)).toBe('/admin%2Fx');
    expect(targetOf('/api/..%2fadmin/x', KEEP_ALL)).toBe('/api/..%2Fadmin/x');
    expect(targetOf('/admin\\x', KEEP_ALL)).toBe('/admin%5Cx');
  });

  it('path_parameters and double_encoding: keep pass them through as they came', () => {
    expect(targetOf('/admin;x=1/y', KEEP_ALL)).toBe('/admin;x=1/y');
    expect(targetOf('/admin%3bx', KEEP_ALL)).toBe('/admin%3Bx');
    expect(targetOf('/admin%252f', KEEP_ALL)).toBe('/admin%252f');
    // Never configurable: control characters and broken escapes.
    expect(refusal('/admin%00', KEEP_ALL)).toBe('control-character');
    expect(refusal('/admin%g0', KEEP_ALL)).toBe('invalid-percent-encoding');
  });
});

describe('normalizeRequestTarget properties', () => {
  const piece = fc.constantFrom(
    'a',
    'B',
    '/',
    '//',
    '.',
    '..',
    '%2e',
    '%2F',
    '%2f',
    '%5c',
    '\\',
    '%41',
    '%61',
    '%25',
    '%3B',
    ';',
    '{',
    '%7b',
    '?',
    '=',
    '%',
    '2',
    'f',
    '\u00e9',
  );
  const target = fc.array(piece, { maxLength: 12 }).map((parts) => `/${parts.join('')}`);
  const options = fc.record({
    escapedSlashes: fc.constantFrom<PathNormalization['escapedSlashes'][]>('reject', 'unescape', 'keep'),
    pathParameters: fc.constantFrom<PathNormalization['pathParameters'][]>('reject', 'keep'),
    doubleEncoding: fc.constantFrom<PathNormalization['doubleEncoding'][]>('reject', 'keep'),
  });

  it('is idempotent, and the target forwarded is the path decided on plus the query as sent', () => {
    fc.assert(
      fc.property(target, options, (input, opts) => {
        const once = normalizeRequestTarget(input, opts);
        if (!once.ok) return;
        const path = once.path!;
        const query = input.includes('?') ? input.slice(input.indexOf('?')) : '';
        expect(once.target).toBe(path + query);
        expect(normalizeRequestTarget(once.target, opts)).toEqual(once);
      }),
      { numRuns: 3_000 },
    );
  });

  it('leaves no empty, "." or ".." segment, no lower-case or decodable escape, in what it lets through', () => {
    fc.assert(
      fc.property(target, options, (input, opts) => {
        const result = normalizeRequestTarget(input, opts);
        if (!result.ok) return;
        const segments = result.path!.slice(1).split('/');
        const inner = result.path!.endsWith('/') ? segments.slice(0, -1) : segments;
        if (result.path !== '/') {
          expect(inner).not.toContain('');
          expect(inner).not.toContain('.');
          expect(inner).not.toContain('..');
        }
        expect(result.path).not.toMatch(
          /%(?:[0-9A-F][a-f]|[a-f][0-9A-F])|%(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2[DE]|5F|7E)/,
        );
        expect(result.path).not.toMatch(/[\\{}\u0080-\u00ff]/);
      }),
      { numRuns: 3_000 },
    );
  });

  it('by default, refuses every target whose path holds an escaped slash, ";" or "\\"', () => {
    fc.assert(
      fc.property(target, (input) => {
        const path = input.split('?')[0]!;
        if (/%2f|%5c|\\|;|%3b/i.test(path)) expect(normalizeRequestTarget(input).ok).toBe(false);
      }),
      { numRuns: 3_000 },
    );
  });
});

describe('checkPathNormalization', () => {
  it('reads the config mapping, defaults for what is absent', () => {
    const problems: string[] = [];
    expect(checkPathNormalization({ escaped_slashes: 'unescape' }, 'path_normalization', problems)).toEqual({
      escapedSlashes: 'unescape',
      pathParameters: 'reject',
      doubleEncoding: 'reject',
    });
    expect(checkPathNormalization(undefined, 'path_normalization', problems)).toBe(
      DEFAULT_PATH_NORMALIZATION,
    );
    expect(problems).toEqual([]);
  });

  it('reports unknown keys and values by dotted path', () => {
    const problems: string[] = [];
    checkPathNormalization(
      { escaped_slashes: 'redirect', merge_slashes: false },
      'path_normalization',
      problems,
    );
    checkPathNormalization('strict', 'path_normalization', problems);
    expect(problems).toEqual([
      'path_normalization.escaped_slashes: must be one of reject, unescape, keep (got "redirect")',
      'path_normalization.merge_slashes: unknown key (known keys: escaped_slashes, path_parameters, double_encoding)',
      'path_normalization: must be a mapping of escaped_slashes, path_parameters, double_encoding (got "strict")',
    ]);
  });
});
