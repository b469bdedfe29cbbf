import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { isSigilError } from '../../spiffe/errors.js';
import { checkProxyConfig, parseProxyConfig } from '../config.js';
import { diffProxyConfig } from '../config-watch.js';

const INBOUND = { name: 'api', listen: '127.0.0.1:15001', app: '127.0.0.1:8080' };

function rateLimitOf(rateLimit: unknown) {
  return checkProxyConfig({ inbound: [{ ...INBOUND, rate_limit: rateLimit }] }, 'proxy.yaml').inbound[0]!
    .rateLimit;
}

function problems(rateLimit: unknown): string[] {
  try {
    rateLimitOf(rateLimit);
  } catch (err) {
    if (isSigilError(err, 'ERR_CONFIG_INVALID'))
      return err.message
        .split('\n')
        .slice(1)
        .map((l) => l.trim());
    throw err;
  }
  throw new Error('expected ERR_CONFIG_INVALID');
}

describe('checkRateLimit (inbound[].rate_limit)', () => {
  it('reads the documented example', () => {
    const config = parseProxyConfig(
      `inbound:
  - name: api
    listen: 127.0.0.1:15001
    app: 127.0.0.1:8080
    rate_limit:
      total: { requests_per_second: 1000, burst: 2000 }
      per_caller: { requests_per_second: 100, burst: 100 }
      overrides:
        - principals: [spiffe://example.org/ns/batch/sa/etl, spiffe://partner.test/*]
          requests_per_second: 500
          burst: 500
`,
      'proxy.yaml',
    );
    expect(config.inbound[0]!.rateLimit).toEqual({
      total: { requestsPerSecond: 1000, burst: 2000 },
      perCaller: { requestsPerSecond: 100, burst: 100 },
      overrides: [
        {
          principals: ['spiffe://example.org/ns/batch/sa/etl', 'spiffe://partner.test/*'],
          requestsPerSecond: 500,
          burst: 500,
        },
      ],
    });
    expect(Object.isFrozen(config.inbound[0]!.rateLimit)).toBe(true);
  });

  it('is null when absent, so the listener does no rate work', () => {
    expect(rateLimitOf(undefined)).toBeNull();
  });

  it('defaults the burst to one second of the rate, at least one request', () => {
    expect(rateLimitOf({ total: { requests_per_second: 50 } })?.total).toEqual({
      requestsPerSecond: 50,
      burst: 50,
    });
    expect(rateLimitOf({ per_caller: { requests_per_second: 2.5 } })?.perCaller).toEqual({
      requestsPerSecond: 2.5,
      burst: 3,
    });
    expect(rateLimitOf({ per_caller: { requests_per_second: 0.1 } })?.perCaller?.burst).toBe(1);
  });

  it('refuses out-of-bounds rates and bursts, naming the field and the value', () => {
    expect(
      problems({
        total: { requests_per_second: 0.05, burst: 0 },
        per_caller: { requests_per_second: 2_000_000, burst: 10_000_001 },
      }),
    ).toEqual([
      'inbound[0].rate_limit.total.requests_per_second: must be a number from 0.1 to 1000000 (got 0.05)',
      'inbound[0].rate_limit.total.burst: must be a whole number from 1 to 10000000 (got 0)',
      'inbound[0].rate_limit.per_caller.requests_per_second: must be a number from 0.1 to 1000000 (got 2000000)',
      'inbound[0].rate_limit.per_caller.burst: must be a whole number from 1 to 10000000 (got 10000001)',
    ]);
    expect(problems({ total: { requests_per_second: '100' } })).toEqual([
      'inbound[0].rate_limit.total.requests_per_second: must be a number from 0.1 to 1000000 (got "100")',
    ]);
    expect(problems({ total: {} })).toEqual([
      'inbound[0].rate_limit.total.requests_per_second: must be a number from 0.1 to 1000000 (got undefined)',
    ]);
  });

  it('refuses unknown keys and an empty rate_limit', () => {
    expect(problems({ total: { requests_per_second: 1, rps: 2 }, per_ip: {} })).toEqual([
      'inbound[0].rate_limit.per_ip: unknown key (known keys: total, per_caller, overrides)',
      'inbound[0].rate_limit.total.rps: unknown key (known keys: requests_per_second, burst)',
    ]);
    expect(problems({})).toEqual([
      'inbound[0].rate_limit: set at least one of total, per_caller or overrides',
    ]);
    expect(problems('100/s')).toEqual([
      'inbound[0].rate_limit: must be a mapping (got "100/s")',
      'inbound[0].rate_limit: set at least one of total, per_caller or overrides',
    ]);
  });

  it('checks every override principal, and refuses one named twice', () => {
    const at = 'inbound[0].rate_limit.overrides';
    expect(
      problems({
        overrides: [
          { principals: ['spiffe://example.org/a', 'https://example.org/b'], requests_per_second: 1 },
          { principals: ['spiffe://example.org/a', 'spiffe://example.org/ns/*'], requests_per_second: 1 },
          { principals: [], requests_per_second: 1 },
          { requests_per_second: 1 },
        ],
      }),
    ).toEqual([
      `${at}[0].principals[1]: SPIFFE ID "https://example.org/b" must start with "spiffe://" (lowercase scheme)`,
      `${at}[1].principals[1]: "spiffe://example.org/ns/*": only a whole trust domain may be a wildcard (spiffe://<trust domain>/*)`,
      `${at}[1].principals: "spiffe://example.org/a" is already in overrides[0]`,
      `${at}[2].principals: name at least one SPIFFE ID`,
      `${at}[3].principals: name the SPIFFE IDs (or spiffe://<trust domain>/*) the override is for`,
    ]);
  });

  it('bounds the number of overrides and of principals in each', () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => `spiffe://example.org/c${i}`);
    const many = Array.from({ length: 101 }, (_, i) => ({
      principals: [`spiffe://example.org/o${i}`],
      requests_per_second: 1,
    }));
    expect(problems({ overrides: many })).toEqual([
      'inbound[0].rate_limit.overrides: must have at most 100 items (got 101)',
    ]);
    expect(problems({ overrides: [{ principals: ids(101), requests_per_second: 1 }] })).toEqual([
      'inbound[0].rate_limit.overrides[0].principals: must have at most 100 items (got 101)',
    ]);
    expect(
      rateLimitOf({ overrides: [{ principals: ids(100), requests_per_second: 1 }] })?.overrides,
    ).toHaveLength(1);
  });

  it('survives a YAML round trip through /config as plain data', () => {
    const rateLimit = rateLimitOf({
      per_caller: { requests_per_second: 5 },
      overrides: [{ principals: ['spiffe://example.org/a'], requests_per_second: 9, burst: 9 }],
    });
    expect(parseYaml(JSON.stringify(rateLimit))).toEqual(rateLimit);
  });

  it('is restart-only: a reload that changes it reports the listener as waiting for a restart', () => {
    const withRate = (rps: number) =>
      checkProxyConfig(
        { inbound: [{ ...INBOUND, rate_limit: { per_caller: { requests_per_second: rps } } }] },
        'proxy.yaml',
      );
    expect(diffProxyConfig(withRate(5), withRate(5)).needsRestart).toEqual([]);
    expect(diffProxyConfig(withRate(5), withRate(6)).needsRestart).toEqual(['inbound.api']);
  });
});
