import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SigilError } from './errors.js';
import { canonicalSelectors, formatSelector, makeSelector, parseSelector } from './selector.js';
import { unsafeCharacterIn } from './text.js';

function caught(fn: () => unknown): SigilError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SigilError);
    return err as SigilError;
  }
  throw new Error('expected a SigilError, nothing was thrown');
}

describe('parseSelector', () => {
  it('splits at the first colon; the value keeps the rest', () => {
    expect(parseSelector('unix:uid:1000')).toEqual({ type: 'unix', value: 'uid:1000' });
    expect(parseSelector('k8s_sat:cluster:c1')).toEqual({ type: 'k8s_sat', value: 'cluster:c1' });
    expect(parseSelector('docker:label:a=b:c')).toEqual({ type: 'docker', value: 'label:a=b:c' });
  });

  it('returns frozen values', () => {
    expect(Object.isFrozen(parseSelector('unix:uid:0'))).toBe(true);
  });

  it.each([
    ['unix', 'must be "type:value"'],
    [':uid:0', 'type must be lowercase letters, digits and "_"'],
    ['Unix:uid:0', 'type must be lowercase letters, digits and "_"'],
    ['k8s-sat:x', 'type must be lowercase letters, digits and "_"'],
    ['unix:', 'value is empty'],
    ['unix:uid\n0', 'value contains a control character U+000A at index 3'],
    ['unix:uid\u00000', 'value contains a control character U+0000 at index 3'],
    ['unix:path:/bin/\u009b2J', 'value contains a control character U+009B at index 10'],
    ['unix:user:admin\u202egnp.exe', 'value contains a bidirectional control U+202E at index 10'],
    ['unix:uid:1\u20280', 'value contains a line separator U+2028 at index 5'],
    [`unix:${'v'.repeat(1020)}`, 'is longer than 1024 bytes'],
  ])('refuses %j (%s)', (input, rule) => {
    const err = caught(() => parseSelector(input, 'selectors[1]'));
    expect(err.code).toBe('ERR_SELECTOR_INVALID');
    expect(err.field).toBe('selectors[1]');
    expect(err.message).toContain(rule);
    expect(err.message.startsWith('selectors[1]: selector "')).toBe(true);
  });

  it('accepts exactly 1024 bytes, counting UTF-8', () => {
    expect(parseSelector(`unix:${'v'.repeat(1019)}`).value).toHaveLength(1019);
    // "é" is two bytes: 5 + 2 * 510 = 1025 bytes.
    expect(caught(() => parseSelector(`unix:${'é'.repeat(510)}`)).code).toBe('ERR_SELECTOR_INVALID');
  });

  it('refuses a non-string', () => {
    expect(caught(() => parseSelector(7 as unknown as string)).code).toBe('ERR_SELECTOR_INVALID');
    expect(caught(() => makeSelector('unix', 7 as unknown as string)).code).toBe('ERR_SELECTOR_INVALID');
  });
});

describe('canonicalSelectors', () => {
  it('sorts and removes duplicates', () => {
    const input = ['unix:uid:1', 'k8s:ns:a', 'unix:uid:1', 'unix:gid:2'].map((s) => parseSelector(s));
    expect(canonicalSelectors(input).map(formatSelector)).toEqual(['k8s:ns:a', 'unix:gid:2', 'unix:uid:1']);
    expect(canonicalSelectors([])).toEqual([]);
  });
});

describe('properties', () => {
  const type = fc.stringMatching(/^[a-z0-9_]{1,16}$/);
  const value = fc
    .string({ unit: 'binary', minLength: 1, maxLength: 64 })
    // Control and bidi characters are refused by makeSelector (text.ts), tested on their own above.
    .filter((v) => unsafeCharacterIn(v) === undefined);

  it('format then parse gives the same selector', () => {
    fc.assert(
      fc.property(type, value, (t, v) => {
        const s = makeSelector(t, v);
        expect(parseSelector(formatSelector(s))).toEqual(s);
      }),
    );
  });

  it('canonical form is independent of order and repetition', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(type, value), { maxLength: 10 }), (pairs) => {
        const selectors = pairs.map(([t, v]) => makeSelector(t, v));
        const shuffled = [...selectors].reverse().concat(selectors);
        expect(canonicalSelectors(shuffled)).toEqual(canonicalSelectors(selectors));
        const keys = canonicalSelectors(selectors).map(formatSelector);
        expect(new Set(keys).size).toBe(keys.length);
      }),
    );
  });
});
