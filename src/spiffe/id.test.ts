import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SigilError } from './errors.js';
import {
  parseSpiffeId,
  parseTrustDomain,
  parseWorkloadSpiffeId,
  SpiffeId,
  spiffeIdFromPath,
  TrustDomain,
} from './id.js';

function caught(fn: () => unknown): SigilError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SigilError);
    return err as SigilError;
  }
  throw new Error('expected a SigilError, nothing was thrown');
}

const TD_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789.-_';
const PATH_CHARS = `${TD_CHARS}ABCDEFGHIJKLMNOPQRSTUVWXYZ`;

describe('parseSpiffeId: one case per spiffe-facts §1 rule', () => {
  const rejected: readonly [rule: string, input: string, reason: string][] = [
    ['scheme must be exactly lowercase "spiffe://"', 'SPIFFE://example.org/a', 'scheme'],
    ['scheme must be spiffe', 'https://example.org/a', 'scheme'],
    ['scheme must be present', 'example.org/a', 'scheme'],
    ['scheme needs both slashes', 'spiffe:/example.org/a', 'scheme'],
    ['input must not be empty', '', 'empty'],
    ['trust domain must be present', 'spiffe:///a', 'trust-domain-missing'],
    ['trust domain must be present (bare scheme)', 'spiffe://', 'trust-domain-missing'],
    ['trust domain is lowercase only', 'spiffe://Example.org/a', 'trust-domain-char'],
    ['trust domain has no port', 'spiffe://example.org:8080/a', 'trust-domain-char'],
    ['trust domain has no userinfo', 'spiffe://user@example.org/a', 'trust-domain-char'],
    ['trust domain is never an IPv6 literal', 'spiffe://[::1]/a', 'trust-domain-char'],
    ['trust domain has no percent-encoding', 'spiffe://exa%6dple.org/a', 'trust-domain-char'],
    ['trust domain is at most 255 bytes', `spiffe://${'a'.repeat(256)}/a`, 'trust-domain-too-long'],
    ['whole ID is at most 2048 bytes', `spiffe://example.org/${'a'.repeat(2048 - 21 + 1)}`, 'too-long'],
    ['path segment charset', 'spiffe://example.org/a b', 'path-char'],
    ['path has no percent-encoding', 'spiffe://example.org/a%20b', 'path-char'],
    ['path has no query', 'spiffe://example.org/a?x=1', 'path-char'],
    ['path has no fragment', 'spiffe://example.org/a#frag', 'path-char'],
    ['path has no empty segment', 'spiffe://example.org/a//b', 'path-empty-segment'],
    ['path has no "." segment', 'spiffe://example.org/a/./b', 'path-dot-segment'],
    ['path has no ".." segment', 'spiffe://example.org/a/..', 'path-dot-segment'],
    ['no trailing slash on the trust domain ID', 'spiffe://example.org/', 'path-trailing-slash'],
    ['no trailing slash on a path', 'spiffe://example.org/a/', 'path-trailing-slash'],
  ];
  it.each(rejected)('%s: rejects %j', (_rule, input, reason) => {
    const err = caught(() => parseSpiffeId(input));
    expect(err.code).toBe('ERR_SPIFFE_ID_INVALID');
    expect(err.reason).toBe(reason);
    expect(err.field).toBe('spiffe_id');
    expect(err.message).toMatch(/^spiffe_id: SPIFFE ID "/);
  });

  const accepted: readonly [rule: string, input: string, td: string, path: string][] = [
    ['a trust domain ID has no path', 'spiffe://example.org', 'example.org', ''],
    ['dotted IPv4 fits the charset', 'spiffe://10.0.0.1/a', '10.0.0.1', '/a'],
    ['trust domain may use . - _ and digits', 'spiffe://a-b_c.9/x', 'a-b_c.9', '/x'],
    ['trust domain of exactly 255 bytes', `spiffe://${'a'.repeat(255)}`, 'a'.repeat(255), ''],
    ['path segments may be mixed case', 'spiffe://example.org/NS/Web', 'example.org', '/NS/Web'],
    [
      'dotted segments other than . and .. are fine',
      'spiffe://example.org/.../.a/a.',
      'example.org',
      '/.../.a/a.',
    ],
    [
      'an ID of exactly 2048 bytes',
      `spiffe://example.org/${'a'.repeat(2048 - 21)}`,
      'example.org',
      `/${'a'.repeat(2048 - 21)}`,
    ],
  ];
  it.each(accepted)('%s: accepts %j', (_rule, input, td, path) => {
    const id = parseSpiffeId(input);
    expect(id.trustDomain.name).toBe(td);
    expect(id.path).toBe(path);
    expect(id.isTrustDomainId).toBe(path === '');
    expect(id.toString()).toBe(input);
    expect(JSON.stringify(id)).toBe(JSON.stringify(input));
  });

  it('compares exactly: the path is case-sensitive', () => {
    expect(parseSpiffeId('spiffe://example.org/a').equals(parseSpiffeId('spiffe://example.org/a'))).toBe(
      true,
    );
    expect(parseSpiffeId('spiffe://example.org/a').equals(parseSpiffeId('spiffe://example.org/A'))).toBe(
      false,
    );
    expect(parseSpiffeId('spiffe://example.org/a').equals(parseSpiffeId('spiffe://example.com/a'))).toBe(
      false,
    );
  });

  it('names the caller-supplied field', () => {
    const err = caught(() => parseSpiffeId('nope', 'entries[3].spiffe_id'));
    expect(err.field).toBe('entries[3].spiffe_id');
    expect(err.message).toContain('entries[3].spiffe_id: SPIFFE ID "nope" must start with "spiffe://"');
  });

  it('refuses a non-string', () => {
    const err = caught(() => parseSpiffeId(42 as unknown as string));
    expect([err.code, err.reason]).toEqual(['ERR_SPIFFE_ID_INVALID', 'type']);
  });
});

describe('parseTrustDomain', () => {
  it('accepts a bare name or a trust domain ID', () => {
    expect(parseTrustDomain('example.org').name).toBe('example.org');
    expect(parseTrustDomain('spiffe://example.org').name).toBe('example.org');
    expect(parseTrustDomain('example.org').idString).toBe('spiffe://example.org');
    expect(parseTrustDomain('example.org').equals(parseTrustDomain('spiffe://example.org'))).toBe(true);
  });

  it.each([
    ['', 'trust-domain-missing'],
    ['Example.org', 'trust-domain-char'],
    ['example.org:443', 'trust-domain-char'],
    ['a'.repeat(256), 'trust-domain-too-long'],
    ['spiffe://example.org/path', 'path'],
    // The ID form fails inside parseSpiffeId; the code must still be the trust domain one.
    ['spiffe://Example.org', 'trust-domain-char'],
    ['SPIFFE://example.org', 'scheme'],
    ['spiffe://example.org/', 'path-trailing-slash'],
  ])('rejects %j with ERR_TRUST_DOMAIN_INVALID (%s)', (input, reason) => {
    const err = caught(() => parseTrustDomain(input));
    expect(err.code).toBe('ERR_TRUST_DOMAIN_INVALID');
    expect(err.reason).toBe(reason);
    expect(err.field).toBe('trust_domain');
  });
});

describe('workload IDs and paths', () => {
  const td = parseTrustDomain('example.org');

  it('parseWorkloadSpiffeId refuses the trust domain ID', () => {
    const err = caught(() => parseWorkloadSpiffeId('spiffe://example.org'));
    expect([err.code, err.reason]).toEqual(['ERR_SPIFFE_ID_INVALID', 'no-path']);
    expect(parseWorkloadSpiffeId('spiffe://example.org/web').path).toBe('/web');
  });

  it('spiffeIdFromPath requires a leading slash and the path rules', () => {
    expect(spiffeIdFromPath(td, '/ns/web').toString()).toBe('spiffe://example.org/ns/web');
    expect(spiffeIdFromPath(td, '').isTrustDomainId).toBe(true);
    expect(caught(() => spiffeIdFromPath(td, 'ns/web')).reason).toBe('path-leading-slash');
    expect(caught(() => spiffeIdFromPath(td, '/ns/')).reason).toBe('path-trailing-slash');
    expect(caught(() => spiffeIdFromPath(td, '/ns/../x')).reason).toBe('path-dot-segment');
  });

  it('contains() matches whole segments only, within one trust domain', () => {
    const ns = parseSpiffeId('spiffe://example.org/ns');
    expect(ns.contains(parseSpiffeId('spiffe://example.org/ns/web'))).toBe(true);
    expect(ns.contains(ns)).toBe(true);
    expect(ns.contains(parseSpiffeId('spiffe://example.org/nsx'))).toBe(false);
    expect(ns.contains(parseSpiffeId('spiffe://example.com/ns/web'))).toBe(false);
    expect(parseSpiffeId('spiffe://example.org').contains(ns)).toBe(true);
  });

  it('only the parsers make values', () => {
    expect(parseSpiffeId('spiffe://example.org/a')).toBeInstanceOf(SpiffeId);
    expect(parseSpiffeId('spiffe://example.org/a').trustDomain).toBeInstanceOf(TrustDomain);
  });
});

describe('properties', () => {
  const tdName = fc
    .array(fc.constantFrom(...TD_CHARS), { minLength: 1, maxLength: 40 })
    .map((chars) => chars.join(''));
  const segment = fc
    .array(fc.constantFrom(...PATH_CHARS), { minLength: 1, maxLength: 20 })
    .map((chars) => chars.join(''))
    .filter((s) => s !== '.' && s !== '..');

  it('every ID built from valid parts parses and round-trips through toString()', () => {
    fc.assert(
      fc.property(tdName, fc.array(segment, { maxLength: 8 }), (td, segments) => {
        const path = segments.map((s) => `/${s}`).join('');
        const input = `spiffe://${td}${path}`;
        const id = parseSpiffeId(input);
        expect(id.toString()).toBe(input);
        expect(id.trustDomain.name).toBe(td);
        expect(id.path).toBe(path);
        expect(parseSpiffeId(id.toString()).equals(id)).toBe(true);
        expect(spiffeIdFromPath(parseTrustDomain(td), path).equals(id)).toBe(true);
      }),
    );
  });

  it('a trust domain holding any character outside the charset is rejected', () => {
    const outside = fc
      .integer({ min: 0, max: 0x10ffff })
      .map((code) => String.fromCodePoint(code))
      .filter((c) => !TD_CHARS.includes(c) && c !== '/');
    fc.assert(
      fc.property(fc.tuple(tdName, outside, tdName), ([before, bad, after]) => {
        const td = `${before}${bad}${after}`;
        const err = caught(() => parseSpiffeId(`spiffe://${td}/workload`));
        expect([err.code, err.reason]).toEqual(['ERR_SPIFFE_ID_INVALID', 'trust-domain-char']);
        const bare = caught(() => parseTrustDomain(td));
        expect(bare.code).toBe('ERR_TRUST_DOMAIN_INVALID');
      }),
    );
  });

  it('random input either parses back to itself or throws a SigilError, nothing else', () => {
    const anyText = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'binary' }).map((s) => `spiffe://${s}`),
      fc
        .array(fc.constantFrom('a', 'Z', '.', '/', '-', '_', '%', ':', '@', ' '))
        .map((c) => `spiffe://${c.join('')}`),
    );
    fc.assert(
      fc.property(anyText, (input) => {
        try {
          expect(parseSpiffeId(input).toString()).toBe(input);
        } catch (err) {
          expect(err).toBeInstanceOf(SigilError);
        }
        try {
          parseTrustDomain(input);
        } catch (err) {
          expect(err).toBeInstanceOf(SigilError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
