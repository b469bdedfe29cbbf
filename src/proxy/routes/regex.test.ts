import { describe, expect, it } from 'vitest';
import { compileRouteRegex } from './regex.js';

function regex(source: string): RegExp {
  const result = compileRouteRegex(source);
  if (!result.ok) throw new Error(result.reason);
  return result.regex;
}

function reason(source: string): string {
  const result = compileRouteRegex(source);
  if (result.ok) throw new Error(`${source} was accepted`);
  return result.reason;
}

describe('compileRouteRegex', () => {
  it('anchors the pattern: a full match, as Envoy and Gateway API conformance expect', () => {
    const r = regex('/v[0-9]+|/beta');
    expect(r.test('/v2')).toBe(true);
    expect(r.test('/beta')).toBe(true);
    expect(r.test('/v2/x')).toBe(false);
    expect(r.test('/x/beta')).toBe(false);
  });

  it('accepts common RE2: classes, counted repeats, groups, named groups, a leading (?i)', () => {
    expect(regex('[a-z]{2,4}-\\d+').test('abc-12')).toBe(true);
    expect(regex('(?:foo|bar)/x?').test('bar/')).toBe(true);
    expect(regex('(?P<v>v[0-9])').test('v1')).toBe(true);
    expect(regex('(?i)canary').test('CaNaRy')).toBe(true);
    expect(regex('[\\]a]+').test(']a')).toBe(true);
    expect(regex('a{2}').test('aa')).toBe(true);
  });

  it('refuses what could backtrack for ever, or means something else in JavaScript', () => {
    const nested =
      'repeats a group that holds a quantifier or "|" (e.g. "(a+)+"): it can take exponential time here; rewrite it without the nesting';
    expect(reason('(a+)+b')).toBe(nested);
    expect(reason('(a|aa)*b')).toBe(nested);
    expect(reason('((ab)*c)+')).toBe(nested);
    expect(reason('(x{1,3}){2,}')).toBe(nested);
    expect(reason('(a)\\1')).toBe('backreferences are not supported (RE2 has none)');
    expect(reason('(?<n>a)\\k<n>')).toBe('backreferences are not supported (RE2 has none)');
    expect(reason('a(?=b)')).toBe('lookahead and lookbehind are not supported (RE2 has none)');
    expect(reason('(?<!a)b')).toBe('lookahead and lookbehind are not supported (RE2 has none)');
    expect(reason('[[:alpha:]]')).toBe(
      'POSIX classes like [[:alpha:]] are not supported; write the range, e.g. [A-Za-z]',
    );
    expect(reason('\\pL')).toBe('Unicode classes (\\p{…}) are not supported');
    expect(reason('\\Qa.b\\E')).toBe('\\Q…\\E quoting is not supported; escape each character');
    expect(reason('a(?s).')).toBe('group flags "(?s" are not supported (only a leading "(?i)")');
    expect(reason('[]a]')).toMatch(/^a "\]" first in a class/);
    expect(reason('*a')).toBe('has a quantifier with nothing to repeat at offset 0');
    expect(reason('(a')).toBe('has an unclosed "("');
    expect(reason('a)')).toBe('has an unmatched ")"');
    expect(reason('[a')).toBe('has an unclosed "["');
    expect(reason('')).toBe('must not be empty');
    expect(reason('a'.repeat(1025))).toBe('must be at most 1024 characters (got 1025)');
  });

  it('a quantified group without inner quantifiers is fine; so are quantifiers side by side', () => {
    expect(regex('(ab)+c').test('ababc')).toBe(true);
    expect(regex('a+b*c?').test('aab')).toBe(true);
    expect(regex('(a+)b').test('aab')).toBe(true);
  });
});
