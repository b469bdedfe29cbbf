import { constants, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createTrustBundle, encodeJwtJwks, type TrustBundle } from './bundle.js';
import { SigilError, type SigilErrorCode } from './errors.js';
import { parseSpiffeId, parseTrustDomain, type TrustDomain } from './id.js';
import {
  type JwtAlg,
  MAX_JWT_AUDIENCE_BYTES,
  MAX_JWT_AUDIENCES,
  MAX_JWT_SVID_BYTES,
  mintJwtSvid,
  type ValidateJwtSvidOptions,
  validateJwtSvid,
} from './jwt-svid.js';

// Pre-generated pool: RSA key generation is slow.
const pair = (type: 'P-256' | 'P-384' | 'P-521' | 'rsa' | 'rsa-1024') =>
  type === 'rsa' || type === 'rsa-1024'
    ? generateKeyPairSync('rsa', { modulusLength: type === 'rsa' ? 2048 : 1024 })
    : generateKeyPairSync('ec', { namedCurve: type });
const keys = {
  p256: pair('P-256'),
  p384: pair('P-384'),
  p521: pair('P-521'),
  rsa: pair('rsa'),
  rsa1024: pair('rsa-1024'),
  /** Signs for other.org; its kid is unknown to example.org. */
  other: pair('P-256'),
  /** Same kid as p256 but a different key: an impostor. */
  impostor: pair('P-256'),
};

const td = parseTrustDomain('example.org');
const otherTd = parseTrustDomain('other.org');
const bundles = new Map<string, TrustBundle>([
  [
    'example.org',
    createTrustBundle({
      trustDomain: td,
      jwtAuthorities: [
        { kid: 'k256', publicKey: keys.p256.publicKey },
        { kid: 'k384', publicKey: keys.p384.publicKey },
        { kid: 'k521', publicKey: keys.p521.publicKey },
        { kid: 'krsa', publicKey: keys.rsa.publicKey },
        { kid: 'krsa1024', publicKey: keys.rsa1024.publicKey },
      ],
    }),
  ],
  [
    'other.org',
    createTrustBundle({
      trustDomain: otherTd,
      jwtAuthorities: [{ kid: 'kother', publicKey: keys.other.publicKey }],
    }),
  ],
]);
const bundleFor = (t: TrustDomain) => bundles.get(t.name);

const web = parseSpiffeId('spiffe://example.org/ns/web');
const T0 = 1_700_000_000_000;
const opts = (extra: Partial<ValidateJwtSvidOptions> = {}): ValidateJwtSvidOptions => ({
  audience: 'spiffe://example.org/db',
  bundleFor,
  nowMs: T0 + 1000,
  ...extra,
});

function mint(extra: Partial<Parameters<typeof mintJwtSvid>[0]> = {}): string {
  return mintJwtSvid({
    spiffeId: web,
    audience: ['spiffe://example.org/db'],
    issuedAtMs: T0,
    expiresAtMs: T0 + 300_000,
    key: keys.p256.privateKey,
    kid: 'k256',
    ...extra,
  });
}

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const decode = (part: string) =>
  JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>;

const HASH: Record<JwtAlg, string> = {
  RS256: 'sha256',
  RS384: 'sha384',
  RS512: 'sha512',
  PS256: 'sha256',
  PS384: 'sha384',
  PS512: 'sha512',
  ES256: 'sha256',
  ES384: 'sha384',
  ES512: 'sha512',
};

/** A JWS built by hand, the way an independent issuer would, without our minting code. */
function handToken(header: unknown, claims: unknown, key: KeyObject, alg: JwtAlg): string {
  const input = `${b64(header)}.${b64(claims)}`;
  const options = alg.startsWith('ES')
    ? { key, dsaEncoding: 'ieee-p1363' as const }
    : alg.startsWith('PS')
      ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
      : { key };
  return `${input}.${sign(HASH[alg], Buffer.from(input), options).toString('base64url')}`;
}

const goodClaims = (extra: Record<string, unknown> = {}) => ({
  sub: 'spiffe://example.org/ns/web',
  aud: ['spiffe://example.org/db'],
  exp: T0 / 1000 + 300,
  iat: T0 / 1000,
  ...extra,
});

function caught(fn: () => unknown): SigilError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SigilError);
    return err as SigilError;
  }
  throw new Error('expected a SigilError, nothing was thrown');
}

describe('mint then validate', () => {
  const cases: readonly [JwtAlg, keyof typeof keys, string][] = [
    ['ES256', 'p256', 'k256'],
    ['ES384', 'p384', 'k384'],
    ['RS256', 'rsa', 'krsa'],
    ['RS384', 'rsa', 'krsa'],
    ['RS512', 'rsa', 'krsa'],
    ['PS256', 'rsa', 'krsa'],
    ['PS384', 'rsa', 'krsa'],
    ['PS512', 'rsa', 'krsa'],
  ];
  it.each(cases)('%s', (alg, keyName, kid) => {
    const token = mint({ alg, key: keys[keyName].privateKey, kid, jti: 'j-1' });
    const [h, p] = token.split('.') as [string, string];
    expect(decode(h)).toEqual({ alg, kid, typ: 'JWT' });
    expect(Object.keys(decode(h))).toEqual(['alg', 'kid', 'typ']);
    expect(decode(p)).toEqual({
      sub: 'spiffe://example.org/ns/web',
      aud: ['spiffe://example.org/db'],
      exp: T0 / 1000 + 300,
      iat: T0 / 1000,
      jti: 'j-1',
    });
    const result = validateJwtSvid(token, opts());
    expect(result.spiffeId.equals(web)).toBe(true);
    expect(result.kid).toBe(kid);
    expect(result.audience).toEqual(['spiffe://example.org/db']);
    expect(result.expiresAtMs).toBe(T0 + 300_000);
    expect(result.claims.jti).toBe('j-1');
    expect(Object.isFrozen(result.claims)).toBe(true);
    expect(Object.isFrozen(result.claims.aud)).toBe(true);
  });

  it('picks the algorithm from the key by default', () => {
    const algOf = (token: string) => decode(token.split('.')[0]!).alg;
    expect(algOf(mint())).toBe('ES256');
    expect(algOf(mint({ key: keys.p384.privateKey, kid: 'k384' }))).toBe('ES384');
    expect(algOf(mint({ key: keys.rsa.privateKey, kid: 'krsa' }))).toBe('RS256');
  });

  it('leaves jti out unless given and keeps several audiences', () => {
    const token = mint({ audience: ['a', 'b'] });
    expect(decode(token.split('.')[1]!)).not.toHaveProperty('jti');
    expect(validateJwtSvid(token, opts({ audience: 'b' })).audience).toEqual(['a', 'b']);
  });

  it('the largest token the audience and ID limits allow stays within MAX_JWT_SVID_BYTES and validates', () => {
    // Quotes double in JSON; a 2,048-byte SPIFFE ID; RSA: the longest signature in the pool.
    const audience = Array.from({ length: MAX_JWT_AUDIENCES }, (_, i) =>
      `${i}`.padEnd(MAX_JWT_AUDIENCE_BYTES, '"'),
    );
    const spiffeId = parseSpiffeId(
      `spiffe://example.org/${'w'.repeat(2048 - 'spiffe://example.org/'.length)}`,
    );
    const token = mint({ spiffeId, audience, key: keys.rsa.privateKey, kid: 'krsa' });
    expect(Buffer.byteLength(token)).toBeLessThan(MAX_JWT_SVID_BYTES);
    expect(validateJwtSvid(token, opts({ audience: audience[3]! })).spiffeId.toString()).toBe(
      spiffeId.toString(),
    );
  });

  it('writes whole seconds, rounding down', () => {
    const token = mint({ issuedAtMs: T0 + 999, expiresAtMs: T0 + 60_999 });
    expect(decode(token.split('.')[1]!)).toMatchObject({ iat: T0 / 1000, exp: T0 / 1000 + 60 });
  });
});

describe('interoperability', () => {
  it('our token verifies with node:crypto alone, using the key from the Workload API JWKS', () => {
    const jwks = JSON.parse(encodeJwtJwks(bundles.get('example.org')!)) as { keys: { kid: string }[] };
    for (const [alg, kid, privateKey] of [
      ['ES256', 'k256', keys.p256.privateKey],
      ['ES384', 'k384', keys.p384.privateKey],
      ['RS256', 'krsa', keys.rsa.privateKey],
      ['PS256', 'krsa', keys.rsa.privateKey],
    ] as const) {
      const token = mint({ alg, kid, key: privateKey });
      const [h, p, s] = token.split('.') as [string, string, string];
      const header = decode(h);
      const jwk = jwks.keys.find((k) => k.kid === header.kid)!;
      const publicKey = createPublicKey({ key: jwk as never, format: 'jwk' });
      const options = alg.startsWith('ES')
        ? { key: publicKey, dsaEncoding: 'ieee-p1363' as const }
        : alg === 'PS256'
          ? {
              key: publicKey,
              padding: constants.RSA_PKCS1_PSS_PADDING,
              saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
            }
          : { key: publicKey, padding: constants.RSA_PKCS1_PADDING };
      expect(verify(HASH[alg], Buffer.from(`${h}.${p}`), options, Buffer.from(s, 'base64url'))).toBe(true);
    }
  });

  it('validates a token built by hand: typ JOSE, aud as a string, extra claims', () => {
    const token = handToken(
      { typ: 'JOSE', kid: 'k521', alg: 'ES512' },
      goodClaims({ aud: 'spiffe://example.org/db', iss: 'someone', nested: { a: [1, 2] } }),
      keys.p521.privateKey,
      'ES512',
    );
    const result = validateJwtSvid(token, opts());
    expect(result.audience).toEqual(['spiffe://example.org/db']);
    expect(result.claims.iss).toBe('someone');
    expect(Object.isFrozen((result.claims.nested as { a: number[] }).a)).toBe(true);
  });

  it('validates a hand-built token without typ and with fractional times', () => {
    const claims = goodClaims({ exp: T0 / 1000 + 300.9, iat: T0 / 1000 + 0.5 });
    const token = handToken({ alg: 'RS256', kid: 'krsa' }, claims, keys.rsa.privateKey, 'RS256');
    expect(validateJwtSvid(token, opts()).expiresAtMs).toBe(T0 + 300_000);
  });
});

describe('rejections', () => {
  const es = (header: unknown, claims: unknown = goodClaims(), key = keys.p256.privateKey) =>
    handToken(header, claims, key, 'ES256');
  const hdr = (extra: Record<string, unknown> = {}) => ({ alg: 'ES256', kid: 'k256', typ: 'JWT', ...extra });
  const good = () => mint();
  const [gh, gp, gs] = good().split('.') as [string, string, string];

  const cases: readonly [
    what: string,
    token: () => string,
    code: SigilErrorCode,
    message: string,
    extra?: Partial<ValidateJwtSvidOptions>,
  ][] = [
    ['two parts', () => `${gh}.${gp}`, 'ERR_JWT_INVALID', 'not a compact JWS'],
    [
      'a token over the size limit, refused before decoding',
      () => `${gh}.${'A'.repeat(MAX_JWT_SVID_BYTES)}.${gs}`,
      'ERR_JWT_INVALID',
      `more than the ${MAX_JWT_SVID_BYTES} allowed`,
    ],
    ['four parts', () => `${good()}.x`, 'ERR_JWT_INVALID', 'not a compact JWS'],
    [
      'JSON serialization',
      () => JSON.stringify({ payload: gp, signatures: [{ protected: gh, signature: gs }] }),
      'ERR_JWT_INVALID',
      'not a compact JWS',
    ],
    ['padded base64url', () => `${gh}=.${gp}.${gs}`, 'ERR_JWT_INVALID', 'header is not unpadded base64url'],
    [
      'standard base64 alphabet',
      () => `${gh}.${gp}.${gs.replace(/-/g, '+').replace(/_/g, '/')}x+`,
      'ERR_JWT_INVALID',
      'signature is not unpadded base64url',
    ],
    [
      'empty signature (unsigned)',
      () => `${gh}.${gp}.`,
      'ERR_JWT_INVALID',
      'signature is not unpadded base64url',
    ],
    ['header not JSON', () => `${b64('nope')}.${gp}.${gs}`, 'ERR_JWT_INVALID', 'header: invalid JSON'],
    ['header an array', () => `${b64([1])}.${gp}.${gs}`, 'ERR_JWT_INVALID', 'header must be a JSON object'],
    [
      'header not UTF-8',
      () => `${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}.${gp}.${gs}`,
      'ERR_JWT_INVALID',
      'header is not UTF-8',
    ],
    [
      'alg none',
      () => `${b64({ alg: 'none', kid: 'k256' })}.${gp}.${gs}`,
      'ERR_JWT_ALG',
      'algorithm "none" is not allowed',
    ],
    [
      'alg HS256',
      () => `${b64({ alg: 'HS256', kid: 'k256' })}.${gp}.${gs}`,
      'ERR_JWT_ALG',
      'algorithm "HS256" is not allowed',
    ],
    [
      'alg EdDSA',
      () => `${b64({ alg: 'EdDSA', kid: 'k256' })}.${gp}.${gs}`,
      'ERR_JWT_ALG',
      'algorithm "EdDSA" is not allowed',
    ],
    [
      'alg outside allowedAlgs',
      good,
      'ERR_JWT_ALG',
      'algorithm "ES256" is not allowed (allowed: RS256)',
      { allowedAlgs: ['RS256'] },
    ],
    ['alg missing', () => es({ kid: 'k256' }), 'ERR_JWT_INVALID', 'header is missing alg'],
    ['alg not a string', () => es({ alg: 1, kid: 'k256' }), 'ERR_JWT_INVALID', 'header alg must be a string'],
    [
      'extra header member',
      () => es(hdr({ jku: 'https://evil' })),
      'ERR_JWT_INVALID',
      'header member "jku" is not allowed',
    ],
    [
      'crit header',
      () => es(hdr({ crit: ['exp'] })),
      'ERR_JWT_INVALID',
      'header member "crit" is not allowed',
    ],
    [
      'typ other than JWT/JOSE',
      () => es(hdr({ typ: 'at+jwt' })),
      'ERR_JWT_INVALID',
      'header typ "at+jwt" must be "JWT" or "JOSE"',
    ],
    ['typ lowercase', () => es(hdr({ typ: 'jwt' })), 'ERR_JWT_INVALID', 'must be "JWT" or "JOSE"'],
    ['kid missing', () => es({ alg: 'ES256' }), 'ERR_JWT_INVALID', 'header is missing the key ID (kid)'],
    ['kid empty', () => es(hdr({ kid: '' })), 'ERR_JWT_INVALID', 'header kid must be a non-empty string'],
    [
      'duplicate header member',
      () => `${b64('{"alg":"ES256","kid":"k256","kid":"krsa"}')}.${gp}.${gs}`,
      'ERR_JWT_INVALID',
      'header: top-level object has member "kid" twice',
    ],
    [
      'duplicate claim',
      () =>
        es(
          hdr(),
          `{"sub":"spiffe://example.org/a","sub":"spiffe://example.org/b","exp":${T0 / 1000 + 60},"aud":"x"}`,
        ),
      'ERR_JWT_INVALID',
      'claims: top-level object has member "sub" twice',
    ],
    ['claims not an object', () => es(hdr(), '"x"'), 'ERR_JWT_INVALID', 'claims must be a JSON object'],
    [
      'sub missing',
      () => es(hdr(), goodClaims({ sub: undefined })),
      'ERR_JWT_INVALID',
      'token has no sub claim',
    ],
    ['sub empty', () => es(hdr(), goodClaims({ sub: '' })), 'ERR_JWT_INVALID', 'token has no sub claim'],
    [
      'sub not a string',
      () => es(hdr(), goodClaims({ sub: 5 })),
      'ERR_JWT_INVALID',
      'sub claim must be a string',
    ],
    [
      'sub not a SPIFFE ID',
      () => es(hdr(), goodClaims({ sub: 'https://example.org/a' })),
      'ERR_JWT_INVALID',
      'sub claim is not a SPIFFE ID: sub: SPIFFE ID',
    ],
    [
      'exp missing',
      () => es(hdr(), goodClaims({ exp: undefined })),
      'ERR_JWT_INVALID',
      'token has no exp claim',
    ],
    [
      'exp not a number',
      () => es(hdr(), goodClaims({ exp: '1700000300' })),
      'ERR_JWT_INVALID',
      'exp claim must be a number of seconds',
    ],
    [
      'exp infinite',
      () => es(hdr(), `{"sub":"spiffe://example.org/a","exp":1e400,"aud":"x"}`),
      'ERR_JWT_INVALID',
      'exp claim must be a number of seconds',
    ],
    [
      'aud of the wrong type',
      () => es(hdr(), goodClaims({ aud: [1] })),
      'ERR_JWT_INVALID',
      'aud claim must be a string or an array of strings',
    ],
    [
      'no bundle for the trust domain',
      () => es(hdr(), goodClaims({ sub: 'spiffe://unknown.org/a' })),
      'ERR_BUNDLE_NOT_FOUND',
      'no bundle for trust domain "unknown.org"',
    ],
    [
      'bundleFor answers with another domain',
      good,
      'ERR_BUNDLE_NOT_FOUND',
      'no bundle for trust domain "example.org"',
      { bundleFor: () => bundles.get('other.org') },
    ],
    [
      'unknown kid',
      () => es(hdr({ kid: 'nope' })),
      'ERR_JWT_KEY_NOT_FOUND',
      'no JWT authority with key ID "nope" in the bundle of "example.org"',
    ],
    [
      'kid of a key from another trust domain',
      () => es(hdr({ kid: 'kother' }), goodClaims(), keys.other.privateKey),
      'ERR_JWT_KEY_NOT_FOUND',
      'no JWT authority with key ID "kother"',
    ],
    [
      'RS256 naming an EC key',
      () => handToken({ alg: 'RS256', kid: 'k256' }, goodClaims(), keys.rsa.privateKey, 'RS256'),
      'ERR_JWT_ALG',
      'key "k256": RS256 needs an RSA key',
    ],
    [
      'ES256 naming a P-384 key',
      () => es(hdr({ kid: 'k384' }), goodClaims(), keys.p384.privateKey),
      'ERR_JWT_ALG',
      'key "k384": ES256 needs an EC prime256v1 key (found EC secp384r1)',
    ],
    [
      'RSA key below 2048 bits',
      () => handToken({ alg: 'RS256', kid: 'krsa1024' }, goodClaims(), keys.rsa1024.privateKey, 'RS256'),
      'ERR_JWT_ALG',
      'needs an RSA key of at least 2048 bits (found RSA 1024 bits)',
    ],
    [
      'tampered payload',
      () => `${gh}.${b64(goodClaims({ sub: 'spiffe://example.org/admin' }))}.${gs}`,
      'ERR_JWT_SIGNATURE',
      'signature does not verify with key "k256"',
    ],
    [
      'signed by an impostor key under a known kid',
      () => es(hdr(), goodClaims(), keys.impostor.privateKey),
      'ERR_JWT_SIGNATURE',
      'signature does not verify',
    ],
    [
      'ES256 signature of the wrong length',
      () => `${gh}.${gp}.${b64('x'.repeat(70))}`,
      'ERR_JWT_SIGNATURE',
      'signature does not verify',
    ],
    [
      'expired',
      good,
      'ERR_JWT_EXPIRED',
      `token expired (exp ${T0 / 1000 + 300}, now ${T0 / 1000 + 400})`,
      { nowMs: T0 + 400_000 },
    ],
    [
      'not valid yet',
      () => es(hdr(), goodClaims({ nbf: T0 / 1000 + 120 })),
      'ERR_JWT_INVALID',
      'token is not valid yet',
    ],
    [
      'issued in the future',
      () => es(hdr(), goodClaims({ iat: T0 / 1000 + 120 })),
      'ERR_JWT_INVALID',
      'token was issued in the future',
    ],
    [
      'aud missing',
      () => es(hdr(), goodClaims({ aud: undefined })),
      'ERR_JWT_AUDIENCE',
      'token has no aud claim',
    ],
    ['aud empty', () => es(hdr(), goodClaims({ aud: [] })), 'ERR_JWT_AUDIENCE', 'token has no aud claim'],
    [
      'aud without ours',
      () => es(hdr(), goodClaims({ aud: ['a', 'b'] })),
      'ERR_JWT_AUDIENCE',
      `audience "spiffe://example.org/db" is not in the token's aud`,
    ],
  ];

  it.each(cases)('%s', (_what, token, code, message, extra) => {
    const t = token();
    const err = caught(() => validateJwtSvid(t, opts(extra)));
    expect(err.code).toBe(code);
    expect(err.message).toContain(message);
    expect(err.message.startsWith('jwt-svid: ')).toBe(true);
    // A JWT is a bearer credential: no part of it may reach an error message (and so a log).
    for (const part of t.split('.')) if (part.length > 8) expect(err.message).not.toContain(part);
  });

  it('checks in go-spiffe order: alg before kid, exp presence before the bundle, signature before time', () => {
    expect(caught(() => validateJwtSvid(`${b64({ alg: 'HS256' })}.${gp}.${gs}`, opts())).code).toBe(
      'ERR_JWT_ALG',
    );
    const noExpUnknownTd = es(hdr(), goodClaims({ exp: undefined, sub: 'spiffe://unknown.org/a' }));
    expect(caught(() => validateJwtSvid(noExpUnknownTd, opts())).message).toContain('token has no exp claim');
    const tamperedAndExpired = `${gh}.${b64(goodClaims({ exp: 1 }))}.${gs}`;
    expect(caught(() => validateJwtSvid(tamperedAndExpired, opts())).code).toBe('ERR_JWT_SIGNATURE');
  });

  it('refuses bad options', () => {
    expect(caught(() => validateJwtSvid(good(), opts({ audience: '' }))).code).toBe('ERR_INPUT_INVALID');
    expect(caught(() => validateJwtSvid(good(), opts({ nowMs: Number.NaN }))).code).toBe('ERR_INPUT_INVALID');
    expect(caught(() => validateJwtSvid(good(), opts({ leewayMs: -1 }))).code).toBe('ERR_INPUT_INVALID');
  });

  it('random input is refused with a SigilError, nothing else', () => {
    const part = fc.oneof(
      fc.base64String().map((s) => s.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')),
      fc.json().map(b64),
    );
    const tokens = fc.oneof(
      fc.string(),
      fc.tuple(part, part, part).map((p) => p.join('.')),
      fc.tuple(fc.json(), fc.json()).map(([h, c]) => `${b64(h)}.${b64(c)}.${gs}`),
      fc
        .dictionary(fc.constantFrom('sub', 'exp', 'aud', 'iat', 'nbf', 'x'), fc.jsonValue())
        .map((c) => `${gh}.${b64(c)}.${gs}`),
    );
    fc.assert(
      fc.property(tokens, (t) => {
        expect(() => validateJwtSvid(t, opts())).toThrow(SigilError);
      }),
      { numRuns: 500 },
    );
  });
});

describe('leeway edges (60s default, as go-jose)', () => {
  const expS = T0 / 1000 + 300;
  const token = mint();
  it('exp: valid up to exp + leeway, expired one millisecond later', () => {
    expect(validateJwtSvid(token, opts({ nowMs: expS * 1000 + 60_000 })).expiresAtMs).toBe(expS * 1000);
    expect(caught(() => validateJwtSvid(token, opts({ nowMs: expS * 1000 + 60_001 }))).code).toBe(
      'ERR_JWT_EXPIRED',
    );
  });

  it('exp with leewayMs 0: valid at exp, expired just after', () => {
    expect(() => validateJwtSvid(token, opts({ nowMs: expS * 1000, leewayMs: 0 }))).not.toThrow();
    expect(caught(() => validateJwtSvid(token, opts({ nowMs: expS * 1000 + 1, leewayMs: 0 }))).code).toBe(
      'ERR_JWT_EXPIRED',
    );
  });

  it('nbf: valid from nbf - leeway, not one millisecond earlier', () => {
    const nbfS = T0 / 1000 + 100;
    const t = handToken(
      { alg: 'ES256', kid: 'k256' },
      goodClaims({ nbf: nbfS }),
      keys.p256.privateKey,
      'ES256',
    );
    expect(() => validateJwtSvid(t, opts({ nowMs: nbfS * 1000 - 60_000 }))).not.toThrow();
    const err = caught(() => validateJwtSvid(t, opts({ nowMs: nbfS * 1000 - 60_001 })));
    expect([err.code, err.reason]).toEqual(['ERR_JWT_INVALID', 'nbf']);
  });

  it('iat: accepted up to leeway in the future, not one millisecond more', () => {
    const iatS = T0 / 1000;
    expect(() => validateJwtSvid(token, opts({ nowMs: iatS * 1000 - 60_000 }))).not.toThrow();
    const err = caught(() => validateJwtSvid(token, opts({ nowMs: iatS * 1000 - 60_001 })));
    expect([err.code, err.reason]).toEqual(['ERR_JWT_INVALID', 'iat']);
  });

  it('a custom leeway widens every window', () => {
    expect(() =>
      validateJwtSvid(token, opts({ nowMs: expS * 1000 + 119_000, leewayMs: 120_000 })),
    ).not.toThrow();
  });
});

describe('mint refusals', () => {
  const ed = generateKeyPairSync('ed25519').privateKey;
  it.each([
    [
      'a trust domain ID as subject',
      { spiffeId: parseSpiffeId('spiffe://example.org') },
      'ERR_SPIFFE_ID_INVALID',
      'must have a path',
    ],
    ['an empty audience', { audience: [] }, 'ERR_INPUT_INVALID', 'audience must be specified'],
    [
      'an empty audience value',
      { audience: ['a', ''] },
      'ERR_INPUT_INVALID',
      'audience values must be non-empty strings',
    ],
    [
      'more audience values than allowed',
      { audience: Array.from({ length: MAX_JWT_AUDIENCES + 1 }, (_, i) => `aud-${i}`) },
      'ERR_INPUT_INVALID',
      `at most ${MAX_JWT_AUDIENCES} audience values are allowed (got ${MAX_JWT_AUDIENCES + 1})`,
    ],
    [
      'an audience value over the size limit',
      { audience: ['x'.repeat(MAX_JWT_AUDIENCE_BYTES + 1)] },
      'ERR_INPUT_INVALID',
      `may be at most ${MAX_JWT_AUDIENCE_BYTES} bytes (got ${MAX_JWT_AUDIENCE_BYTES + 1}`,
    ],
    [
      'an audience with a control character',
      { audience: ['a\u001b[2J'] },
      'ERR_INPUT_INVALID',
      'control character',
    ],
    ['exp equal to iat', { expiresAtMs: T0 }, 'ERR_JWT_INVALID', 'must be after iat'],
    [
      'exp within the same second as iat',
      { issuedAtMs: T0, expiresAtMs: T0 + 999 },
      'ERR_JWT_INVALID',
      'must be after iat',
    ],
    ['exp before iat', { expiresAtMs: T0 - 1000 }, 'ERR_JWT_INVALID', 'must be after iat'],
    [
      'a non-finite time',
      { expiresAtMs: Number.POSITIVE_INFINITY },
      'ERR_JWT_INVALID',
      'must be finite numbers',
    ],
    ['an empty kid', { kid: '' }, 'ERR_JWT_INVALID', 'kid must be a non-empty string'],
    ['an empty jti', { jti: '' }, 'ERR_JWT_INVALID', 'jti must be a non-empty string'],
    [
      'ES384 with a P-256 key',
      { alg: 'ES384' },
      'ERR_JWT_ALG',
      'ES384 needs an EC secp384r1 key (found EC prime256v1)',
    ],
    ['RS256 with an EC key', { alg: 'RS256' }, 'ERR_JWT_ALG', 'RS256 needs an RSA key'],
    [
      'ES256 with an RSA key',
      { alg: 'ES256', key: keys.rsa.privateKey },
      'ERR_JWT_ALG',
      'ES256 needs an EC prime256v1 key',
    ],
    [
      'an algorithm outside the list',
      { alg: 'HS256' as JwtAlg },
      'ERR_JWT_ALG',
      '"HS256" is not a JWT-SVID algorithm',
    ],
    ['a public key', { key: keys.p256.publicKey }, 'ERR_KEY_INVALID', 'a private KeyObject is needed'],
    ['an Ed25519 key', { key: ed }, 'ERR_KEY_INVALID', 'unsupported key type "ed25519"'],
  ] as const)('refuses %s', (_what, extra, code, message) => {
    const err = caught(() => mint(extra as Partial<Parameters<typeof mintJwtSvid>[0]>));
    expect(err.code).toBe(code);
    expect(err.message).toContain(message);
  });
});
