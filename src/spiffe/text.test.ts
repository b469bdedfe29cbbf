import { describe, expect, it } from 'vitest';
import { escapeUnsafeCharacters, unsafeCharacterIn } from './text.js';

describe('unsafeCharacterIn', () => {
  it.each([
    ['plain text, ünïcödé and emoji 🚀', undefined],
    ['tab\there', 'control character U+0009 at index 3'],
    ['esc \u001b[2J', 'control character U+001B at index 4'],
    ['del\u007f', 'control character U+007F at index 3'],
    ['csi \u009b', 'control character U+009B at index 4'],
    ['evil\u202etxt.exe', 'bidirectional control U+202E at index 4'],
    ['isolate\u2066', 'bidirectional control U+2066 at index 7'],
    ['mark\u200f', 'bidirectional control U+200F at index 4'],
    ['para\u2029graph', 'line separator U+2029 at index 4'],
  ])('%j → %s', (text, expected) => {
    expect(unsafeCharacterIn(text)).toBe(expected);
  });
});

describe('escapeUnsafeCharacters', () => {
  it.each([
    ['plain\ttext\nwith ünïcödé', 'plain\ttext\nwith ünïcödé'],
    ['hint \u001b[2J\u001b[31mOK', 'hint \\u001b[2J\\u001b[31mOK'],
    ['over\rwrite', 'over\\u000dwrite'],
    ['csi \u009b2J', 'csi \\u009b2J'],
    ['evil\u202etxt.exe', 'evil\\u202etxt.exe'],
  ])('%j → %j', (text, expected) => {
    expect(escapeUnsafeCharacters(text)).toBe(expected);
  });

  it('keeps JSON valid: the escape reads back as the original character', () => {
    const json = JSON.stringify({ hint: 'a\u009bb\u2028c' });
    expect(JSON.parse(escapeUnsafeCharacters(json))).toEqual({ hint: 'a\u009bb\u2028c' });
  });
});
