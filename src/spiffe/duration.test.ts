import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_TIMER_DELAY_MS } from './clock.js';
import { formatDuration, parseDurationMs, parseTimeoutMs, parseWholeSecondsMs } from './duration.js';
import { SigilError } from './errors.js';

function caught(fn: () => unknown): SigilError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SigilError);
    return err as SigilError;
  }
  throw new Error('expected a SigilError, nothing was thrown');
}

describe('parseDurationMs', () => {
  it.each([
    ['90', 90_000],
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1m30s500ms', 90_500],
    ['500ms', 500],
    ['1.5s', 1_500],
    ['0.5', 500],
    [' 10m ', 600_000],
  ])('reads %j as %d ms', (input, ms) => {
    expect(parseDurationMs(input)).toBe(ms);
  });

  it('reads numbers as seconds', () => {
    expect(parseDurationMs(90)).toBe(90_000);
    expect(parseDurationMs(0.25)).toBe(250);
  });

  it.each([
    ['', 'is not a duration'],
    ['abc', 'is not a duration'],
    ['10x', 'is not a duration'],
    ['-1', 'is not a duration'],
    ['1h 30m', 'is not a duration'],
    ['h', 'is not a duration'],
    ['0', 'must be greater than zero'],
    ['0s', 'must be greater than zero'],
    ['0.0001', 'must be at least 1ms'],
    ['9'.repeat(400), 'is too large'],
    ['99999999999999999d', 'is too large'],
  ])('refuses %j (%s)', (input, rule) => {
    const err = caught(() => parseDurationMs(input, 'x509_svid_ttl'));
    expect(err.code).toBe('ERR_DURATION_INVALID');
    expect(err.field).toBe('x509_svid_ttl');
    expect(err.message).toContain(
      `x509_svid_ttl: ${JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}…` : input)} ${rule}`,
    );
    expect(err.message).toContain('(examples: 90s, 30m, 1h)');
  });

  it.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY, 1e-6, 1e300])('refuses the number %d', (input) => {
    expect(caught(() => parseDurationMs(input)).code).toBe('ERR_DURATION_INVALID');
  });

  it.each([null, undefined, true, {}])('refuses a %j from loosely typed config', (input) => {
    expect(caught(() => parseDurationMs(input as unknown as string)).code).toBe('ERR_DURATION_INVALID');
  });
});

describe('parseWholeSecondsMs', () => {
  it('accepts whole seconds in any unit and refuses fractions of a second', () => {
    expect(parseWholeSecondsMs('1h', 'ttl')).toBe(3_600_000);
    expect(parseWholeSecondsMs('1.5m', 'ttl')).toBe(90_000);
    expect(parseWholeSecondsMs(2000, 'ttl')).toBe(2_000_000);
    for (const input of ['1.5s', '500ms', 0.25, '1m500ms']) {
      expect(() => parseWholeSecondsMs(input, 'ttl')).toThrow(
        expect.objectContaining({
          code: 'ERR_DURATION_INVALID',
          field: 'ttl',
          message: expect.stringContaining('must be a whole number of seconds'),
        }),
      );
    }
  });
});

describe('parseTimeoutMs', () => {
  it('accepts a duration up to the longest timer Node can arm', () => {
    expect(parseTimeoutMs('24d', 'idle_timeout')).toBe(24 * 86_400_000);
    expect(parseTimeoutMs(`${MAX_TIMER_DELAY_MS}ms`, 'idle_timeout')).toBe(MAX_TIMER_DELAY_MS);
  });

  it('refuses a longer one, which Node would fire after 1 ms, and still refuses non-durations', () => {
    const err = caught(() => parseTimeoutMs('30d', 'idle_timeout'));
    expect(err).toMatchObject({
      code: 'ERR_DURATION_INVALID',
      field: 'idle_timeout',
      reason: 'timer-overflow',
    });
    expect(err.message).toBe('idle_timeout: must be at most 2147483647ms, about 24 days (got "30d")');
    expect(caught(() => parseTimeoutMs(`${MAX_TIMER_DELAY_MS + 1}ms`)).reason).toBe('timer-overflow');
    expect(caught(() => parseTimeoutMs('forever', 'idle_timeout')).message).toContain('is not a duration');
  });
});

describe('formatDuration', () => {
  it.each([
    [3_600_000, '1h'],
    [5_400_000, '1h30m'],
    [90_000, '1m30s'],
    [86_400_000 + 1000, '1d1s'],
    [250, '250ms'],
    [1_500, '1500ms'],
    [0, '0s'],
    [-5, '0s'],
  ])('formats %d ms as %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips through parseDurationMs for any positive whole number of milliseconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 * 365 * 86_400_000 }), (ms) => {
        expect(parseDurationMs(formatDuration(ms))).toBe(ms);
      }),
    );
  });

  it('never throws on random text: a SigilError or a positive safe integer', () => {
    fc.assert(
      fc.property(fc.string(), (input) => {
        try {
          const ms = parseDurationMs(input);
          expect(Number.isSafeInteger(ms) && ms > 0).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(SigilError);
        }
      }),
    );
  });
});
