import { describe, expect, it } from 'vitest';
import { callSourceIp, sourceIp } from './source-ip.js';

describe('sourceIp', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['::1', '::1'],
    ['::ffff:abcd', '::ffff:abcd'],
    [undefined, 'unknown'],
  ])('counts %s as %s', (address, expected) => {
    expect(sourceIp(address)).toBe(expected);
  });
});

describe('callSourceIp', () => {
  it.each([
    ['10.0.0.1:5000', '10.0.0.1'],
    ['::ffff:10.0.0.1:5000', '10.0.0.1'],
    ['::1:5000', '::1'],
    ['2001:db8::7:443', '2001:db8::7'],
    ['unknown', 'unknown'],
  ])('reads %s as %s', (peer, expected) => {
    expect(callSourceIp({ getPeer: () => peer })).toBe(expected);
  });
});
