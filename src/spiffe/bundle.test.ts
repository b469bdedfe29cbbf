import 'reflect-metadata';
import {
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKeyInput,
  KeyObject,
  webcrypto,
  X509Certificate,
} from 'node:crypto';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  bundleFromPem,
  bundleToPem,
  concatX509Authorities,
  createTrustBundle,
  encodeBundleMap,
  encodeJwtJwks,
  encodeSpiffeBundle,
  parseBundleMap,
  parseSpiffeBundle,
  type TrustBundle,
} from './bundle.js';
import { SigilError } from './errors.js';
import { parseTrustDomain } from './id.js';
import { encodePem } from './pem.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const td = parseTrustDomain('example.org');

// A small pool made once: RSA key generation is slow, and the properties only need to combine keys.
const jwtKeys: readonly KeyObject[] = [
  ...[1, 2, 3].map(() => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey),
  ...[1, 2].map(() => generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey),
  generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey,
  generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
];
let caCerts: Buffer[] = [];
/** A certificate and its key, to build entries whose key members and x5c disagree. */
let otherKey: KeyObject;

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const EC_P384 = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
const RSA = {
  name: 'RSASSA-PKCS1-v1_5',
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: 'SHA-256',
};

async function makeCaCert(alg: typeof EC_P256 | typeof RSA, cn: string): Promise<Buffer> {
  const keys = (await webcrypto.subtle.generateKey(alg, false, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${cn}`,
    notBefore: new Date('2025-01-01T00:00:00Z'),
    notAfter: new Date('2035-01-01T00:00:00Z'),
    keys: keys as unknown as webcrypto.CryptoKeyPair,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return Buffer.from(cert.rawData);
}

beforeAll(async () => {
  caCerts = await Promise.all([
    makeCaCert(EC_P256, 'ca-1'),
    makeCaCert(EC_P256, 'ca-2'),
    makeCaCert(EC_P384, 'ca-3'),
    makeCaCert(RSA, 'ca-4'),
  ]);
  otherKey = jwtKeys[0]!;
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

function jwk(key: KeyObject): Record<string, string> {
  return key.export({ format: 'jwk' }) as Record<string, string>;
}

function x509Entry(der: Buffer): Record<string, unknown> {
  return { use: 'x509-svid', ...jwk(new X509Certificate(der).publicKey), x5c: [der.toString('base64')] };
}

function jwtEntry(key: KeyObject, kid: string): Record<string, unknown> {
  return { use: 'jwt-svid', kid, ...jwk(key) };
}

function doc(keys: unknown[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ keys, ...extra });
}

function spkiHex(key: KeyObject): string {
  return key.export({ format: 'der', type: 'spki' }).toString('hex');
}

function expectSameBundle(a: TrustBundle, b: TrustBundle, refreshHint = true): void {
  expect(a.trustDomain.name).toBe(b.trustDomain.name);
  expect(a.sequence).toBe(b.sequence);
  if (refreshHint) expect(a.refreshHintS).toBe(b.refreshHintS);
  expect(a.x509Authorities.map((d) => d.toString('hex'))).toEqual(
    b.x509Authorities.map((d) => d.toString('hex')),
  );
  expect(a.jwtAuthorities.map((j) => [j.kid, spkiHex(j.publicKey)])).toEqual(
    b.jwtAuthorities.map((j) => [j.kid, spkiHex(j.publicKey)]),
  );
}

/** Generated bundles: any subset of the CA pool, any keys under unique kids, any sequence and hint. */
const arbitraryBundle = (trustDomain = td) =>
  fc
    .record({
      certs: fc.subarray([0, 1, 2, 3]),
      jwt: fc.uniqueArray(
        fc.record({
          key: fc.integer({ min: 0, max: jwtKeys.length - 1 }),
          kid: fc.string({ unit: 'binary', minLength: 1, maxLength: 24 }),
        }),
        { selector: (j) => j.kid, maxLength: 6 },
      ),
      sequence: fc.oneof(fc.constant(0), fc.maxSafeNat()),
      refreshHintS: fc.oneof(fc.constant(0), fc.nat()),
    })
    .map((f) =>
      createTrustBundle({
        trustDomain,
        x509Authorities: f.certs.map((i) => caCerts[i]!),
        jwtAuthorities: f.jwt.map((j) => ({ kid: j.kid, publicKey: jwtKeys[j.key]! })),
        sequence: f.sequence,
        refreshHintS: f.refreshHintS,
      }),
    );

describe('round trips (properties)', () => {
  it('encodeSpiffeBundle then parseSpiffeBundle gives the same bundle', () => {
    fc.assert(
      fc.property(arbitraryBundle(), (bundle) => {
        expectSameBundle(parseSpiffeBundle(encodeSpiffeBundle(bundle), td), bundle);
      }),
      { numRuns: 40 },
    );
  });

  it('encodeBundleMap then parseBundleMap keeps every trust domain, without refresh hints', () => {
    const names = ['a.org', 'b.org', 'example.org', 'z-z.io'];
    const arbitraryMap = fc
      .subarray(names, { minLength: 1 })
      .chain((picked) => fc.tuple(...picked.map((n) => arbitraryBundle(parseTrustDomain(n)))));
    fc.assert(
      fc.property(arbitraryMap, (bundles) => {
        const json = encodeBundleMap(bundles);
        expect(json).not.toContain('spiffe_refresh_hint');
        const parsed = parseBundleMap(json);
        expect([...parsed.keys()]).toEqual(bundles.map((b) => b.trustDomain.name).sort());
        for (const b of bundles) {
          expectSameBundle(parsed.get(b.trustDomain.name)!, b, false);
          expect(parsed.get(b.trustDomain.name)!.refreshHintS).toBe(0);
        }
      }),
      { numRuns: 30 },
    );
  });

  it('the Workload API JWKS holds exactly the jwt-svid keys, with no use and no spiffe_* members', () => {
    fc.assert(
      fc.property(arbitraryBundle(), (bundle) => {
        const jwks = JSON.parse(encodeJwtJwks(bundle)) as { keys: Record<string, unknown>[] };
        expect(Object.keys(jwks)).toEqual(['keys']);
        expect(jwks.keys.map((k) => k.kid)).toEqual(bundle.jwtAuthorities.map((a) => a.kid));
        jwks.keys.forEach((k, i) => {
          expect(k).not.toHaveProperty('use');
          expect(k).not.toHaveProperty('x5c');
          const key = createPublicKey({ key: k as JsonWebKeyInput['key'], format: 'jwk' });
          expect(spkiHex(key)).toBe(spkiHex(bundle.jwtAuthorities[i]!.publicKey));
        });
      }),
      { numRuns: 40 },
    );
  });

  it('PEM round trip keeps the X.509 authorities', () => {
    fc.assert(
      fc.property(fc.subarray([0, 1, 2, 3], { minLength: 1 }), (picked) => {
        const bundle = createTrustBundle({
          trustDomain: td,
          x509Authorities: picked.map((i) => caCerts[i]!),
        });
        const back = bundleFromPem(td, bundleToPem(bundle));
        expectSameBundle(back, bundle);
      }),
      { numRuns: 20 },
    );
  });

  it('random text is parsed or refused with ERR_BUNDLE_INVALID, nothing else', () => {
    const noisy = fc.oneof(
      fc.string(),
      fc.json(),
      fc.json().map((j) => `{"keys":[${j}]}`),
    );
    fc.assert(
      fc.property(noisy, (text) => {
        for (const parse of [() => parseSpiffeBundle(text, td), () => parseBundleMap(text)]) {
          try {
            parse();
          } catch (err) {
            expect(err).toBeInstanceOf(SigilError);
            expect((err as SigilError).code).toBe('ERR_BUNDLE_INVALID');
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('encodeSpiffeBundle', () => {
  it('writes X.509 then JWT keys in SPIRE member order, indented, with spiffe_* members when set', () => {
    const bundle = createTrustBundle({
      trustDomain: td,
      x509Authorities: [caCerts[0]!],
      jwtAuthorities: [{ kid: 'k1', publicKey: jwtKeys[6]! }],
      sequence: 7,
      refreshHintS: 300,
    });
    const json = encodeSpiffeBundle(bundle);
    expect(json).toContain('\n    "keys": [');
    const parsed = JSON.parse(json) as { keys: Record<string, unknown>[] };
    expect(Object.keys(parsed)).toEqual(['keys', 'spiffe_sequence', 'spiffe_refresh_hint']);
    expect(Object.keys(parsed.keys[0]!)).toEqual(['use', 'kty', 'crv', 'x', 'y', 'x5c']);
    expect(parsed.keys[0]!.x5c).toEqual([caCerts[0]!.toString('base64')]);
    expect(Object.keys(parsed.keys[1]!)).toEqual(['use', 'kty', 'kid', 'n', 'e']);
    expect(parsed).toMatchObject({ spiffe_sequence: 7, spiffe_refresh_hint: 300 });
  });

  it('omits spiffe_sequence and spiffe_refresh_hint when 0', () => {
    const json = encodeSpiffeBundle(createTrustBundle({ trustDomain: td }));
    expect(JSON.parse(json)).toEqual({ keys: [] });
  });
});

describe('parseSpiffeBundle rules (spiffe-facts §4)', () => {
  it('reads an empty key list as "trust nothing"', () => {
    const bundle = parseSpiffeBundle('{"keys": []}', td);
    expect(bundle.x509Authorities).toEqual([]);
    expect(bundle.jwtAuthorities).toEqual([]);
    expect([bundle.sequence, bundle.refreshHintS]).toEqual([0, 0]);
  });

  it('skips entries with an unknown or missing use, whatever else they hold', () => {
    const json = doc([
      { use: 'enc', kty: 'EC', x5c: ['!!', '!!'] },
      { kty: 'RSA', n: 'x', e: 'y', kid: 'k' },
      { use: 'wit-svid', kid: 'w', ...jwk(jwtKeys[0]!) },
      jwtEntry(jwtKeys[1]!, 'kept'),
    ]);
    expect(parseSpiffeBundle(json, td).jwtAuthorities.map((a) => a.kid)).toEqual(['kept']);
  });

  it('skips entries with an unknown kty', () => {
    const json = doc([
      { use: 'jwt-svid', kty: 'OKP', kid: 'ed', crv: 'Ed25519', x: 'AAAA' },
      { use: 'x509-svid', kty: 'oct', k: 'c2VjcmV0' },
      x509Entry(caCerts[0]!),
    ]);
    const bundle = parseSpiffeBundle(json, td);
    expect(bundle.jwtAuthorities).toEqual([]);
    expect(bundle.x509Authorities).toHaveLength(1);
  });

  it('ignores unknown top-level members and reads null spiffe_* members as unset', () => {
    const bundle = parseSpiffeBundle(doc([], { spiffe_sequence: null, extra: { a: [1] } }), td);
    expect(bundle.sequence).toBe(0);
  });

  it('reads the largest safe sequence exactly', () => {
    expect(parseSpiffeBundle('{"keys":[],"spiffe_sequence":9007199254740991}', td).sequence).toBe(
      Number.MAX_SAFE_INTEGER,
    );
  });

  const x5cTwo = () =>
    doc([
      jwtEntry(jwtKeys[0]!, 'a'),
      jwtEntry(jwtKeys[1]!, 'b'),
      { ...x509Entry(caCerts[0]!), x5c: [caCerts[0]!.toString('base64'), caCerts[1]!.toString('base64')] },
    ]);

  const cases: readonly [rule: string, json: () => string, message: string][] = [
    [
      'duplicate top-level member',
      () => '{"keys": [], "keys": []}',
      'top-level object has member "keys" twice',
    ],
    [
      'duplicate member inside an entry',
      () => `{"keys": [{"use": "jwt-svid", "use": "x509-svid"}]}`,
      'keys[0] has member "use" twice',
    ],
    [
      'duplicate spiffe_sequence',
      () => '{"keys":[],"spiffe_sequence":1,"spiffe_sequence":2}',
      'has member "spiffe_sequence" twice',
    ],
    ['keys missing', () => '{"spiffe_sequence": 1}', 'keys: is required'],
    ['keys not an array', () => '{"keys": {}}', 'keys: must be an array'],
    ['root not an object', () => '[]', '(root): must be a JSON object'],
    ['entry not an object', () => '{"keys": [1]}', 'keys[0]: must be a JSON object'],
    ['x5c with two certificates', x5cTwo, 'keys[2].x5c: must hold exactly one certificate (found 2)'],
    [
      'x5c missing',
      () => doc([{ ...x509Entry(caCerts[0]!), x5c: undefined }]),
      'keys[0].x5c: must hold exactly one certificate (found 0)',
    ],
    [
      'x5c empty',
      () => doc([{ ...x509Entry(caCerts[0]!), x5c: [] }]),
      'keys[0].x5c: must hold exactly one certificate (found 0)',
    ],
    [
      'x5c not an array',
      () => doc([{ ...x509Entry(caCerts[0]!), x5c: 'MII' }]),
      'keys[0].x5c: must be an array',
    ],
    [
      'x5c in base64url',
      () => doc([{ ...x509Entry(caCerts[3]!), x5c: [caCerts[3]!.toString('base64url')] }]),
      'keys[0].x5c[0]: must be standard (padded) base64 DER',
    ],
    [
      'x5c not a certificate',
      () => doc([{ ...x509Entry(caCerts[0]!), x5c: ['AAAA'] }]),
      'keys[0].x5c[0]: is not a parseable X.509 certificate',
    ],
    [
      'x5c with bytes after the certificate',
      () =>
        doc([
          { ...x509Entry(caCerts[0]!), x5c: [Buffer.concat([caCerts[0]!, caCerts[1]!]).toString('base64')] },
        ]),
      'keys[0].x5c[0]: has bytes after the certificate',
    ],
    [
      'x5c key differs from the key members',
      () => doc([{ ...x509Entry(caCerts[0]!), ...jwk(otherKey) }]),
      "keys[0].x5c[0]: public key does not match the entry's key members",
    ],
    [
      'kid on an x509-svid entry',
      () => doc([{ ...x509Entry(caCerts[0]!), kid: 'k' }]),
      'keys[0].kid: must not be set on an x509-svid entry',
    ],
    [
      'kid missing on a jwt-svid entry',
      () => doc([{ use: 'jwt-svid', ...jwk(jwtKeys[0]!) }]),
      'keys[0].kid: is required on a jwt-svid entry',
    ],
    ['kid empty', () => doc([jwtEntry(jwtKeys[0]!, '')]), 'keys[0].kid: must be a non-empty string'],
    [
      'kid not a string',
      () => doc([{ ...jwtEntry(jwtKeys[0]!, 'x'), kid: 5 }]),
      'keys[0].kid: must be a non-empty string',
    ],
    [
      'duplicate kid',
      () => doc([jwtEntry(jwtKeys[0]!, 'same'), jwtEntry(jwtKeys[1]!, 'same')]),
      'keys[1].kid: duplicate key ID "same" (also keys[0])',
    ],
    [
      'duplicate certificate',
      () => doc([x509Entry(caCerts[0]!), x509Entry(caCerts[0]!)]),
      'keys[1].x5c: duplicates keys[0]',
    ],
    ['kty missing', () => doc([{ use: 'jwt-svid', kid: 'a' }]), 'keys[0].kty: is required'],
    ['use not a string', () => doc([{ use: 1, kty: 'EC' }]), 'keys[0].use: must be a string'],
    [
      'curve missing',
      () => doc([{ ...jwtEntry(jwtKeys[0]!, 'a'), crv: undefined }]),
      'keys[0].crv: is required',
    ],
    [
      'unknown curve',
      () => doc([{ ...jwtEntry(jwtKeys[0]!, 'a'), crv: 'secp256k1' }]),
      'keys[0].crv: must be "P-256", "P-384" or "P-521"',
    ],
    [
      'padded base64url member',
      () => doc([{ ...jwtEntry(jwtKeys[6]!, 'a'), e: 'AQAB=' }]),
      'keys[0].e: must be unpadded base64url',
    ],
    [
      'standard-base64 member',
      () => doc([{ ...jwtEntry(jwtKeys[0]!, 'a'), x: `${jwk(jwtKeys[0]!).x!.slice(1)}+` }]),
      'keys[0].x: must be unpadded base64url',
    ],
    [
      'short EC coordinate',
      () => doc([{ ...jwtEntry(jwtKeys[0]!, 'a'), y: 'AAAA' }]),
      'keys[0].y: must be 32 bytes for P-256',
    ],
    [
      'point not on the curve',
      () => doc([{ ...jwtEntry(jwtKeys[0]!, 'a'), y: Buffer.alloc(32, 1).toString('base64url') }]),
      'keys[0]: is not a valid EC public key',
    ],
    [
      'private key material',
      () => doc([{ ...jwtEntry(jwtKeys[0]!, 'a'), d: 'AAAA' }]),
      'keys[0].d: is private key material',
    ],
    [
      'sequence above 2^53',
      () => '{"keys":[],"spiffe_sequence":18446744073709551615}',
      'spiffe_sequence: 18446744073709551615 is above 9007199254740991',
    ],
    [
      'sequence just above the safe range',
      () => '{"keys":[],"spiffe_sequence":9007199254740992}',
      'spiffe_sequence: 9007199254740992 is above',
    ],
    [
      'sequence with a fraction',
      () => '{"keys":[],"spiffe_sequence":1.5}',
      'spiffe_sequence: must be a non-negative integer (got 1.5)',
    ],
    [
      'sequence written 1.0',
      () => '{"keys":[],"spiffe_sequence":1.0}',
      'spiffe_sequence: must be a non-negative integer (got 1.0)',
    ],
    [
      'sequence in exponent form',
      () => '{"keys":[],"spiffe_sequence":1e3}',
      'spiffe_sequence: must be a non-negative integer (got 1e3)',
    ],
    [
      'negative sequence',
      () => '{"keys":[],"spiffe_sequence":-1}',
      'spiffe_sequence: must be a non-negative integer (got -1)',
    ],
    [
      'sequence as a string',
      () => '{"keys":[],"spiffe_sequence":"5"}',
      'spiffe_sequence: must be a non-negative integer (got "5")',
    ],
    [
      'negative refresh hint',
      () => '{"keys":[],"spiffe_refresh_hint":-300}',
      'spiffe_refresh_hint: must be a non-negative integer',
    ],
    ['invalid JSON', () => '{"keys": [}', 'bundle: invalid JSON at offset 10'],
    ['data after the JSON', () => '{"keys": []} {}', 'unexpected data after the JSON value'],
    [
      'nesting too deep',
      () => `{"keys": [], "x": ${'['.repeat(100)}${']'.repeat(100)}}`,
      'nested deeper than 64 levels',
    ],
  ];
  it.each(cases)('rejects %s', (_rule, json, message) => {
    const err = caught(() => parseSpiffeBundle(json(), td));
    expect(err.code).toBe('ERR_BUNDLE_INVALID');
    expect(err.message).toContain(message);
  });

  it('names the member path in the error field', () => {
    expect(caught(() => parseSpiffeBundle(x5cTwo(), td)).field).toBe('keys[2].x5c');
  });
});

describe('createTrustBundle', () => {
  it('freezes the bundle, its lists and its authorities', () => {
    const bundle = createTrustBundle({
      trustDomain: td,
      x509Authorities: [caCerts[0]!],
      jwtAuthorities: [{ kid: 'a', publicKey: jwtKeys[0]!, expiresAtMs: 5 }],
    });
    expect(Object.isFrozen(bundle)).toBe(true);
    expect(Object.isFrozen(bundle.x509Authorities)).toBe(true);
    expect(Object.isFrozen(bundle.jwtAuthorities)).toBe(true);
    expect(Object.isFrozen(bundle.jwtAuthorities[0])).toBe(true);
    expect(bundle.jwtAuthorities[0]!.expiresAtMs).toBe(5);
  });

  it("copies certificates, so the caller's buffer cannot change the bundle", () => {
    const der = Buffer.from(caCerts[0]!);
    const bundle = createTrustBundle({ trustDomain: td, x509Authorities: [der] });
    der.fill(0);
    expect(bundle.x509Authorities[0]!.equals(caCerts[0]!)).toBe(true);
  });

  const privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const ed25519 = generateKeyPairSync('ed25519').publicKey;
  it.each([
    [
      'a duplicate kid',
      {
        jwtAuthorities: [
          { kid: 'a', publicKey: jwtKeys[0]! },
          { kid: 'a', publicKey: jwtKeys[1]! },
        ],
      },
      'jwtAuthorities[1].kid: duplicate key ID "a" (also jwtAuthorities[0])',
    ],
    [
      'an empty kid',
      { jwtAuthorities: [{ kid: '', publicKey: jwtKeys[0]! }] },
      'jwtAuthorities[0].kid: must be a non-empty string',
    ],
    [
      'a private key',
      { jwtAuthorities: [{ kid: 'a', publicKey: privateKey }] },
      'jwtAuthorities[0].publicKey: must be a public KeyObject',
    ],
    [
      'an Ed25519 key',
      { jwtAuthorities: [{ kid: 'a', publicKey: ed25519 }] },
      'must be an EC P-256/P-384/P-521 or RSA key (found "ed25519")',
    ],
    [
      'a non-finite expiry',
      { jwtAuthorities: [{ kid: 'a', publicKey: jwtKeys[0]!, expiresAtMs: Number.NaN }] },
      'jwtAuthorities[0].expiresAtMs: must be a finite number',
    ],
    ['an unsafe sequence', { sequence: 2 ** 53 }, 'sequence: must be a non-negative safe integer'],
    ['a negative refresh hint', { refreshHintS: -1 }, 'refreshHintS: must be a non-negative safe integer'],
    [
      'a trust domain that was not parsed',
      { trustDomain: 'example.org' },
      'trustDomain: must be a parsed TrustDomain',
    ],
  ] as const)('rejects %s', (_what, fields, message) => {
    const err = caught(() => createTrustBundle({ trustDomain: td, ...(fields as object) } as never));
    expect(err.code).toBe('ERR_BUNDLE_INVALID');
    expect(err.message).toContain(message);
  });

  it('rejects duplicate and unparseable certificates', () => {
    expect(
      caught(() => createTrustBundle({ trustDomain: td, x509Authorities: [caCerts[0]!, caCerts[0]!] }))
        .message,
    ).toBe('x509Authorities[1]: duplicates x509Authorities[0]');
    expect(
      caught(() => createTrustBundle({ trustDomain: td, x509Authorities: [Buffer.from('3000', 'hex')] }))
        .message,
    ).toBe('x509Authorities[0]: is not a parseable X.509 certificate');
  });
});

describe('PEM', () => {
  it('writes one CERTIFICATE block per X.509 authority and leaves JWT keys out', () => {
    const bundle = createTrustBundle({
      trustDomain: td,
      x509Authorities: [caCerts[0]!, caCerts[3]!],
      jwtAuthorities: [{ kid: 'a', publicKey: jwtKeys[0]! }],
    });
    const pem = bundleToPem(bundle);
    expect(pem.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2);
    expect(bundleFromPem(td, pem).jwtAuthorities).toEqual([]);
  });

  it.each([
    [
      'a non-certificate block',
      () => encodePem('CERTIFICATE', caCerts[0]!) + encodePem('PRIVATE KEY', Buffer.from('x')),
      'pem block 2: is "PRIVATE KEY", expected "CERTIFICATE"',
    ],
    [
      'an unparseable certificate',
      () => encodePem('CERTIFICATE', caCerts[0]!) + encodePem('CERTIFICATE', Buffer.from('junk')),
      'pem block 2: is not a parseable X.509 certificate',
    ],
    [
      'a duplicate certificate',
      () => encodePem('CERTIFICATE', caCerts[1]!).repeat(3),
      'pem block 2: duplicates pem block 1',
    ],
    ['no block at all', () => 'just text', 'pem: holds no CERTIFICATE block'],
    [
      'broken base64',
      () => '-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n',
      'PEM block "CERTIFICATE" has invalid base64',
    ],
  ])('bundleFromPem rejects %s', (_what, pem, message) => {
    const err = caught(() => bundleFromPem(td, pem()));
    expect(err.code).toBe('ERR_BUNDLE_INVALID');
    expect(err.message).toContain(message);
  });
});

describe('bundle map', () => {
  it('parses each trust domain under its bare name', () => {
    const json = `{"trust_domains": {"a.org": ${doc([jwtEntry(jwtKeys[0]!, 'k')])}, "b.org": {"keys": []}}}`;
    const map = parseBundleMap(json);
    expect([...map.keys()]).toEqual(['a.org', 'b.org']);
    expect(map.get('a.org')!.trustDomain.name).toBe('a.org');
    expect(map.get('a.org')!.jwtAuthorities[0]!.kid).toBe('k');
  });

  it.each([
    [
      'a duplicate trust domain',
      '{"trust_domains": {"a.org": {"keys": []}, "a.org": {"keys": []}}}',
      'trust_domains has member "a.org" twice',
    ],
    [
      'a key with a scheme',
      '{"trust_domains": {"spiffe://a.org": {"keys": []}}}',
      'trust_domains["spiffe://a.org"]: key must be a bare trust domain name',
    ],
    [
      'an invalid trust domain',
      '{"trust_domains": {"A.org": {"keys": []}}}',
      'trust_domains["A.org"]: trust domain "A.org" trust domain may contain only',
    ],
    ['trust_domains missing', '{"domains": {}}', 'trust_domains: is required'],
    ['trust_domains not an object', '{"trust_domains": []}', 'trust_domains: must be a JSON object'],
    [
      'an error inside one bundle',
      `{"trust_domains": {"b.org": {"keys": [${JSON.stringify({ use: 'jwt-svid', ...jwk(jwtKeys[0]!) })}]}}}`,
      'trust_domains["b.org"].keys[0].kid: is required',
    ],
  ])('rejects %s', (_what, json, message) => {
    const err = caught(() => parseBundleMap(json));
    expect(err.code).toBe('ERR_BUNDLE_INVALID');
    expect(err.message).toContain(message);
  });

  it('encodeBundleMap refuses two bundles of one trust domain', () => {
    const b = createTrustBundle({ trustDomain: td });
    expect(caught(() => encodeBundleMap([b, b])).message).toBe(
      'bundles: trust domain "example.org" appears more than once',
    );
  });

  it('keeps a trust domain named "__proto__" as an ordinary member', () => {
    const proto = createTrustBundle({ trustDomain: parseTrustDomain('__proto__'), sequence: 3 });
    const map = parseBundleMap(encodeBundleMap([proto]));
    expect(map.get('__proto__')!.sequence).toBe(3);
  });
});

describe('concatX509Authorities', () => {
  it('returns the DER certificates back to back', () => {
    const bundle = createTrustBundle({ trustDomain: td, x509Authorities: [caCerts[2]!, caCerts[0]!] });
    expect(concatX509Authorities(bundle).equals(Buffer.concat([caCerts[2]!, caCerts[0]!]))).toBe(true);
    expect(concatX509Authorities(createTrustBundle({ trustDomain: td }))).toHaveLength(0);
  });
});

describe('key kinds', () => {
  it('accepts P-256, P-384, P-521 and RSA authorities and keeps them as public KeyObjects', () => {
    const bundle = createTrustBundle({
      trustDomain: td,
      jwtAuthorities: jwtKeys.map((publicKey, i) => ({ kid: `k${i}`, publicKey })),
    });
    const back = parseSpiffeBundle(encodeSpiffeBundle(bundle), td);
    for (const a of back.jwtAuthorities) {
      expect(a.publicKey).toBeInstanceOf(KeyObject);
      expect(a.publicKey.type).toBe('public');
    }
  });
});
