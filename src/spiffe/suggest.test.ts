import { describe, expect, it } from 'vitest';
import { parseCliArgs, wantsJsonOutput } from './cli-args.js';
import { closestMatch, didYouMean } from './suggest.js';

const FLAGS = ['--socket-path', '--socket-owner', '--output', '--timeout', '--help', '-h'];

describe('closestMatch', () => {
  it.each([
    ['--sokcet-path', '--socket-path'], // swapped letters: one edit
    ['--socket-pth', '--socket-path'],
    ['--ouput', '--output'],
    ['--Output', '--output'],
    ['--timout', '--timeout'],
    ['--socket-own', '--socket-owner'],
  ])('%s -> %s', (typo, expected) => {
    expect(closestMatch(typo, FLAGS)).toBe(expected);
  });

  it('suggests nothing for a far-off name, an empty one, or a huge one', () => {
    expect(closestMatch('--zebra', FLAGS)).toBeUndefined();
    expect(closestMatch('', FLAGS)).toBeUndefined();
    expect(closestMatch(`--socket-path${'x'.repeat(100_000)}`, FLAGS)).toBeUndefined();
    expect(didYouMean('--zebra', FLAGS)).toBe('');
  });

  it('a prefix of exactly one name suggests it; of several, none', () => {
    expect(closestMatch('--socket', FLAGS)).toBeUndefined();
    expect(closestMatch('--time', FLAGS)).toBe('--timeout');
  });
});

describe('parseCliArgs', () => {
  const options = { 'socket-path': { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;
  it.each([
    [['--sokcet-path', '/x'], 'unknown flag --sokcet-path; did you mean --socket-path?'],
    [['--socket-path'], '--socket-path needs a value'],
    [['--socket-path', '--help'], '--socket-path needs a value'],
    [['--help=yes'], '--help takes no value'],
    [['-x'], /^unknown flag -x$/],
    [['--\u001b[2J'], 'unknown flag "--\\u001b[2J"'],
  ])('%j -> %s', (args, message) => {
    expect(() => parseCliArgs(args, options)).toThrow(message);
  });

  it('names a stray argument when positionals are not allowed', () => {
    expect(() => parseCliArgs(['extra'], options, false)).toThrow('unexpected argument "extra"');
    expect(parseCliArgs(['--socket-path=/x', 'a'], options).positionals).toEqual(['a']);
  });

  it('wantsJsonOutput sees --output json in either spelling, the last one winning', () => {
    expect(wantsJsonOutput(['--bogus', '--output', 'json'])).toBe(true);
    expect(wantsJsonOutput(['--output=json'])).toBe(true);
    expect(wantsJsonOutput(['--output', 'json', '--output', 'text'])).toBe(false);
    expect(wantsJsonOutput(['--', '--output', 'json'])).toBe(false);
  });
});
