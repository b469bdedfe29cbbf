import { describe, expect, it } from 'vitest';
import { isSigilError } from '../spiffe/errors.js';
import { maxSvidTtlMs, rotationWarnings } from './ttl-limits.js';

const MIN_MS = 60_000;
const HOUR_MS = 60 * MIN_MS;

describe('maxSvidTtlMs', () => {
  it('is the part of ca_ttl left after activation: 4h of a 24h CA at 5/6', () => {
    expect(maxSvidTtlMs(24 * HOUR_MS)).toBe(4 * HOUR_MS);
    expect(maxSvidTtlMs(24 * HOUR_MS, 0.75)).toBe(6 * HOUR_MS);
  });

  it('is a whole number of milliseconds, matching the rounded activation mark', () => {
    expect(maxSvidTtlMs(1000, 2 / 3)).toBe(333);
    expect(maxSvidTtlMs(1001, 5 / 6)).toBe(167);
  });

  it.each([
    ['caTtlMs', 0, undefined],
    ['caTtlMs', Number.NaN, undefined],
    ['activateAtFraction', HOUR_MS, 1],
  ])('refuses a bad %s', (field, caTtlMs, fraction) => {
    let err: unknown;
    try {
      maxSvidTtlMs(caTtlMs, fraction);
    } catch (e) {
      err = e;
    }
    expect(isSigilError(err, 'ERR_CONFIG_INVALID')).toBe(true);
    expect((err as { field: string }).field).toBe(field);
  });
});

describe('rotationWarnings', () => {
  const base = { caTtlMs: 24 * HOUR_MS, defaultX509SvidTtlMs: HOUR_MS, defaultJwtSvidTtlMs: 5 * MIN_MS };

  it('is empty for the defaults', () => {
    expect(rotationWarnings(base)).toEqual([]);
  });

  it('is empty at exactly the limit, and warns one millisecond past it', () => {
    expect(rotationWarnings({ ...base, defaultX509SvidTtlMs: 4 * HOUR_MS })).toEqual([]);
    expect(rotationWarnings({ ...base, defaultX509SvidTtlMs: 4 * HOUR_MS + 1 })).toHaveLength(1);
  });

  it('names each TTL that exceeds the limit, with the values', () => {
    const messages = rotationWarnings({
      ...base,
      defaultX509SvidTtlMs: 6 * HOUR_MS,
      defaultJwtSvidTtlMs: 5 * HOUR_MS,
      agentSvidTtlMs: HOUR_MS,
    });
    expect(messages).toEqual([
      "default_x509_svid_ttl (6h) is longer than 4h, the part of ca.ttl (1d) left after the next authority activates; SVIDs minted late in an authority's life will expire with it, sooner than asked. Lower default_x509_svid_ttl or raise ca.ttl",
      "default_jwt_svid_ttl (5h) is longer than 4h, the part of ca.ttl (1d) left after the next authority activates; SVIDs minted late in an authority's life will expire with it, sooner than asked. Lower default_jwt_svid_ttl or raise ca.ttl",
    ]);
  });

  it('follows a configured activation fraction', () => {
    expect(
      rotationWarnings({ ...base, defaultX509SvidTtlMs: 5 * HOUR_MS, activateAtFraction: 0.75 }),
    ).toEqual([]);
  });

  it('warns when ca.ttl is too short to publish the next authority before it activates', () => {
    const messages = rotationWarnings({ caTtlMs: 6 * MIN_MS, defaultX509SvidTtlMs: MIN_MS });
    expect(messages).toEqual([
      'ca.ttl (6m) leaves 5m before the next authority should activate, less than the 10m it must be published first; activation will be late and SVIDs will be cut short. Raise ca.ttl',
    ]);
  });

  it('refuses bad rotation options with ERR_CONFIG_INVALID', () => {
    let err: unknown;
    try {
      rotationWarnings({ ...base, prepareAtFraction: 2 });
    } catch (e) {
      err = e;
    }
    expect(isSigilError(err, 'ERR_CONFIG_INVALID')).toBe(true);
    expect((err as { field: string }).field).toBe('prepareAtFraction');
  });
});
