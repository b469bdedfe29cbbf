import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import {
  createHash,
  createPublicKey,
  ECDH,
  generateKeyPairSync,
  type KeyObject,
  X509Certificate as NodeX509Certificate,
  sign,
  webcrypto,
} from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  derBitString,
  derContext,
  derInteger,
  derOid,
  derSequence,
  derSet,
  derUtf8String,
  readChildren,
  readTlv,
  tlvValue,
} from './der.js';
import { isSigilError, quote, type SigilErrorCode } from './errors.js';
import { parseSpiffeId, parseTrustDomain, type TrustDomain } from './id.js';
import { generateKey, type KeyType } from './keys.js';
import { encodePem } from './pem.js';
import { createCaCertificate } from './x509-authority.js';
import {
  checkDnsName,
  describeCertificate,
  type MintX509SvidParams,
  mintX509Svid,
  parseCsr,
  prepareIssuer,
  verifyX509Svid,
  type X509Issuer,
} from './x509-svid.js';

const webCrypto = webcrypto as unknown as NonNullable<
  Parameters<typeof x509.X509CertificateGenerator.create>[1]
>;
type CryptoKeyT = x509.X509CertificateCreateWithKeyParams['signingKey'];

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const EXAMPLE = parseTrustDomain('example.org');
const OTHER = parseTrustDomain('other.org');
const WEB = parseSpiffeId('spiffe://example.org/web');

const OID = {
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  ski: '2.5.29.14',
  aki: '2.5.29.35',
  san: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

interface TestCa {
  readonly der: Buffer;
  readonly key: KeyObject;
  readonly issuer: X509Issuer;
}

async function makeCa(
  keyType: KeyType,
  opts: { td?: TrustDomain; signer?: TestCa; notBeforeMs?: number; notAfterMs?: number } = {},
): Promise<TestCa> {
  const key = generateKey(keyType);
  const der = await createCaCertificate({
    trustDomain: opts.td ?? EXAMPLE,
    key,
    signer: opts.signer ? { certDer: opts.signer.der, key: opts.signer.key } : undefined,
    notBeforeMs: opts.notBeforeMs ?? NOW - DAY,
    notAfterMs: opts.notAfterMs ?? NOW + 30 * DAY,
  });
  return { der, key, issuer: prepareIssuer(der, key) };
}

function mintLeaf(ca: TestCa, overrides: Partial<MintX509SvidParams> = {}): Buffer {
  return mintX509Svid(
    {
      spiffeId: WEB,
      publicKey: generateKey('ec-p256'),
      notBeforeMs: NOW - 10_000,
      notAfterMs: NOW + HOUR,
      ...overrides,
    },
    ca.issuer,
  );
}

function codeOf(fn: () => unknown): { code: SigilErrorCode; message: string; reason: string | undefined } {
  try {
    fn();
  } catch (err) {
    if (isSigilError(err)) return { code: err.code, message: err.message, reason: err.reason };
    throw err;
  }
  throw new Error('expected a SigilError, nothing was thrown');
}

async function toCryptoKey(key: KeyObject, usage: 'sign' | 'verify'): Promise<CryptoKeyT> {
  const keyType = key.asymmetricKeyType === 'rsa' ? 'rsa' : key.asymmetricKeyDetails?.namedCurve;
  const algorithm =
    keyType === 'rsa'
      ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
      : { name: 'ECDSA', namedCurve: keyType === 'secp384r1' ? 'P-384' : 'P-256' };
  const data =
    usage === 'sign'
      ? key.export({ type: 'pkcs8', format: 'der' })
      : createPublicKey(key).export({ type: 'spki', format: 'der' });
  return (await webcrypto.subtle.importKey(usage === 'sign' ? 'pkcs8' : 'spki', data, algorithm, true, [
    usage,
  ])) as unknown as CryptoKeyT;
}

/** A leaf built with @peculiar/x509 directly, for shapes our minting refuses to produce. */
async function peculiarLeaf(
  ca: TestCa,
  opts: { uris: string[]; isCa?: boolean; keyUsage?: number; withSan?: boolean },
): Promise<Buffer> {
  const caCert = new x509.X509Certificate(ca.der);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(opts.isCa ?? false, undefined, true),
    new x509.KeyUsagesExtension(opts.keyUsage ?? x509.KeyUsageFlags.digitalSignature, true),
    new x509.AuthorityKeyIdentifierExtension(ca.issuer.subjectKeyId.toString('hex')),
  ];
  if (opts.withSan ?? true) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(opts.uris.map((value) => ({ type: 'url', value }))),
    );
  }
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: '01',
      subject: 'O=Sigil',
      issuer: caCert.subjectName,
      notBefore: new Date(NOW - HOUR),
      notAfter: new Date(NOW + HOUR),
      publicKey: createPublicKey(generateKey('ec-p256')).export({ type: 'spki', format: 'der' }),
      signingKey: await toCryptoKey(ca.key, 'sign'),
      signingAlgorithm: {
        name: 'ECDSA',
        hash: 'SHA-256',
      } as x509.X509CertificateCreateWithKeyParams['signingAlgorithm'],
      extensions,
    },
    webCrypto,
  );
  return Buffer.from(cert.rawData);
}

let dir = '';
function openssl(args: string[]): { status: number | null; out: string } {
  const result = spawnSync('openssl', args, { encoding: 'utf8', cwd: dir });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}
function writePem(name: string, ...ders: Buffer[]): string {
  const file = path.join(dir, name);
  writeFileSync(file, ders.map((d) => encodePem('CERTIFICATE', d)).join(''));
  return file;
}
function opensslVerify(bundle: Buffer[], leaf: Buffer, intermediates: Buffer[] = []) {
  const args = ['verify', '-attime', String(Math.floor(NOW / 1000)), '-partial_chain'];
  args.push('-CAfile', writePem('bundle.pem', ...bundle));
  if (intermediates.length > 0) args.push('-untrusted', writePem('intermediates.pem', ...intermediates));
  args.push(writePem('leaf.pem', leaf));
  return openssl(args);
}

let p256: TestCa;
let p384: TestCa;
let rsa: TestCa;
let otherCa: TestCa;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-x509-svid-'));
  [p256, p384, rsa, otherCa] = await Promise.all([
    makeCa('ec-p256'),
    makeCa('ec-p384'),
    makeCa('rsa-2048'),
    makeCa('ec-p256', { td: OTHER }),
  ]);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('mintX509Svid content', () => {
  it('has every field and extension exactly as spiffe-facts §2.1 says (read by @peculiar/x509)', async () => {
    const leafKey = generateKey('ec-p256');
    const der = mintLeaf(p256, { publicKey: leafKey, dnsNames: ['web.example.org', '*.web.example.org'] });
    const cert = new x509.X509Certificate(der);
    const caCert = new x509.X509Certificate(p256.der);

    expect(cert.subject).toBe('O=Sigil, CN=web.example.org');
    expect(cert.issuer).toBe(caCert.subject);
    expect(cert.notBefore.getTime()).toBe(NOW - 10_000);
    expect(cert.notAfter.getTime()).toBe(NOW + HOUR);
    expect(Buffer.from(cert.publicKey.rawData)).toEqual(
      createPublicKey(leafKey).export({ type: 'spki', format: 'der' }),
    );
    expect(cert.extensions.map((e) => e.type)).toEqual([
      OID.keyUsage,
      OID.basicConstraints,
      OID.extKeyUsage,
      OID.ski,
      OID.aki,
      OID.san,
    ]);

    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(
      x509.KeyUsageFlags.digitalSignature |
        x509.KeyUsageFlags.keyEncipherment |
        x509.KeyUsageFlags.keyAgreement,
    );
    expect(Buffer.from(ku.value).toString('hex')).toBe('030203a8');

    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.critical).toBe(true);
    expect(bc.ca).toBe(false);
    expect(Buffer.from(bc.value).toString('hex')).toBe('3000');

    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)!;
    expect(eku.critical).toBe(false);
    expect(eku.usages).toEqual([OID.serverAuth, OID.clientAuth]);

    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)!;
    expect(ski.critical).toBe(false);
    expect(ski.keyId).toBe(Buffer.from(await cert.publicKey.getKeyIdentifier(webCrypto)).toString('hex'));

    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension)!;
    expect(aki.critical).toBe(false);
    expect(aki.keyId).toBe(caCert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);

    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.critical).toBe(false);
    expect(san.names.toJSON()).toEqual([
      { type: 'url', value: 'spiffe://example.org/web' },
      { type: 'dns', value: 'web.example.org' },
      { type: 'dns', value: '*.web.example.org' },
    ]);

    expect(await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true }, webCrypto)).toBe(true);
  });

  it('is v3 with a positive 128-bit random serial and the CA key type signature algorithm', () => {
    const der = mintLeaf(p256);
    const tbs = readChildren(der, readTlv(der))[0]!;
    const fields = readChildren(der, tbs);
    expect(der.subarray(fields[0]!.start, fields[0]!.end).toString('hex')).toBe('a003020102');
    const serial = tlvValue(der, fields[1]!);
    expect(serial.length).toBeLessThanOrEqual(16);
    expect(serial[0]! & 0x80).toBe(0);
    expect(der.subarray(fields[2]!.start, fields[2]!.end).toString('hex')).toBe('300a06082a8648ce3d040302');

    const serials = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const leaf = mintLeaf(p256);
      const s = tlvValue(leaf, readChildren(leaf, readChildren(leaf, readTlv(leaf))[0]!)[1]!);
      expect(s[0]! & 0x80).toBe(0);
      serials.add(s.toString('hex'));
    }
    expect(serials.size).toBe(200);
  });

  it('is read the same way by node:crypto', () => {
    const leafKey = generateKey('ec-p256');
    const der = mintLeaf(p256, { publicKey: leafKey, dnsNames: ['web.example.org'] });
    const cert = new NodeX509Certificate(der);
    const caCert = new NodeX509Certificate(p256.der);
    expect(cert.subject).toBe('O=Sigil\nCN=web.example.org');
    expect(cert.subjectAltName).toBe('URI:spiffe://example.org/web, DNS:web.example.org');
    expect(cert.keyUsage).toEqual([OID.serverAuth, OID.clientAuth]);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(leafKey)).toBe(true);
    expect(new Date(cert.validFrom).getTime()).toBe(NOW - 10_000);
    expect(new Date(cert.validTo).getTime()).toBe(NOW + HOUR);
  });

  it('has subject O=Sigil only and a URI-only SAN when there are no DNS names', () => {
    const cert = new x509.X509Certificate(mintLeaf(p256));
    expect(cert.subject).toBe('O=Sigil');
    expect(cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON()).toEqual([
      { type: 'url', value: 'spiffe://example.org/web' },
    ]);
  });

  it('signs with ecdsa-with-SHA384 under P-384 and sha256WithRSAEncryption under RSA', async () => {
    for (const [ca, oidHex] of [
      [p384, '300a06082a8648ce3d040303'],
      [rsa, '300d06092a864886f70d01010b0500'],
    ] as const) {
      const der = mintLeaf(ca);
      const parts = readChildren(der, readTlv(der));
      expect(der.subarray(parts[1]!.start, parts[1]!.end).toString('hex')).toBe(oidHex);
      const caCert = new x509.X509Certificate(ca.der);
      expect(
        await new x509.X509Certificate(der).verify({ publicKey: caCert, signatureOnly: true }, webCrypto),
      ).toBe(true);
    }
  });

  it('takes the public key as a KeyObject (public or private) or as SPKI DER, with the same result', () => {
    const key = generateKey('ec-p384');
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
    const serial = Buffer.from('0102', 'hex');
    const a = mintLeaf(p256, { publicKey: key, serial });
    const b = mintLeaf(p256, { publicKey: createPublicKey(key), serial });
    const c = mintLeaf(p256, { publicKey: spki, serial });
    const tbs = (d: Buffer) => {
      const t = readChildren(d, readTlv(d))[0]!;
      return d.subarray(t.start, t.end).toString('hex');
    };
    expect(tbs(a)).toBe(tbs(c));
    expect(tbs(b)).toBe(tbs(c));
    expect(new NodeX509Certificate(c).checkPrivateKey(key)).toBe(true);
    const bad = codeOf(() => mintLeaf(p256, { publicKey: Buffer.from('30030201ff', 'hex') }));
    expect(bad.code).toBe('ERR_INPUT_INVALID');
    expect(bad.message).toContain('not SPKI DER');
  });

  it('uses a given serial verbatim, and refuses zero, empty or over-long serials', () => {
    const der = mintLeaf(p256, { serial: Buffer.from('00ff01', 'hex') });
    expect(new NodeX509Certificate(der).serialNumber).toBe('FF01');
    expect(describeCertificate(der).serialHex).toBe('ff01');
    for (const serial of [Buffer.alloc(0), Buffer.alloc(3), Buffer.alloc(21, 1)]) {
      expect(codeOf(() => mintLeaf(p256, { serial })).code).toBe('ERR_INPUT_INVALID');
    }
  });

  it('caps notAfter at the issuer notAfter, and refuses an empty window', () => {
    const capped = mintLeaf(p256, { notAfterMs: NOW + 365 * DAY });
    expect(describeCertificate(capped).notAfterMs).toBe(p256.issuer.notAfterMs);
    expect(describeCertificate(capped).notAfterMs).toBe(describeCertificate(p256.der).notAfterMs);
    const err = codeOf(() =>
      mintLeaf(p256, { notBeforeMs: p256.issuer.notAfterMs, notAfterMs: NOW + 400 * DAY }),
    );
    expect(err.code).toBe('ERR_X509_SVID_INVALID');
    expect(err.message).toContain("capped at the issuer's");
    expect(codeOf(() => mintLeaf(p256, { notBeforeMs: NOW, notAfterMs: NOW })).code).toBe(
      'ERR_X509_SVID_INVALID',
    );
    expect(codeOf(() => mintLeaf(p256, { notAfterMs: Number.NaN })).code).toBe('ERR_X509_SVID_INVALID');
  });

  it('truncates times to whole seconds', () => {
    const d = describeCertificate(mintLeaf(p256, { notBeforeMs: NOW + 999, notAfterMs: NOW + HOUR + 999 }));
    expect(d.notBeforeMs).toBe(NOW);
    expect(d.notAfterMs).toBe(NOW + HOUR);
  });

  it('refuses a trust domain ID (root path) as a workload ID', () => {
    const err = codeOf(() => mintLeaf(p256, { spiffeId: parseSpiffeId('spiffe://example.org') }));
    expect(err.code).toBe('ERR_X509_SVID_INVALID');
    expect(err.message).toContain('has no path');
  });

  it('validates DNS names, naming the bad one', () => {
    const bad: Array<[string, string]> = [
      ['foo_bar.example.org', 'may contain only letters, digits and "-"'],
      ['-web.example.org', 'starts or ends with "-"'],
      ['web-.example.org', 'starts or ends with "-"'],
      ['a..b', 'empty label'],
      ['example.org.', 'empty label'],
      ['', 'empty'],
      ['*', 'only as the whole leftmost label'],
      ['a.*.example.org', 'only as the whole leftmost label'],
      ['*web.example.org', 'only as the whole leftmost label'],
      [`${'a'.repeat(64)}.example.org`, 'longer than 63'],
      [`${'a.'.repeat(127)}ab`, 'longer than 253'],
      ['wéb.example.org', 'may contain only'],
    ];
    for (const [name, rule] of bad) {
      const err = codeOf(() => mintLeaf(p256, { dnsNames: ['ok.example.org', name] }));
      expect(err.code, name).toBe('ERR_INPUT_INVALID');
      expect(err.message, name).toContain(quote(name));
      expect(err.message, name).toContain(rule);
      expect(err.message, name).toContain('dns_names[1]');
    }
    for (const name of ['*.example.org', 'localhost', 'A-1.Example', 'x', `${'a'.repeat(63)}.org`]) {
      expect(() => checkDnsName(name)).not.toThrow();
    }
    expect(codeOf(() => checkDnsName('bad_name', 'entry.dns_names[0]')).message).toMatch(
      /^entry\.dns_names\[0\]:/,
    );
  });
});

describe('prepareIssuer', () => {
  it('captures the CA subject, SKI, notAfter and key type', () => {
    const ca = new x509.X509Certificate(p384.der);
    expect(p384.issuer.keyType).toBe('ec-p384');
    expect(p384.issuer.notAfterMs).toBe(ca.notAfter.getTime());
    expect(p384.issuer.subjectKeyId.toString('hex')).toBe(
      ca.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId,
    );
    expect(p384.issuer.issuerNameDer.equals(Buffer.from(ca.subjectName.toArrayBuffer()))).toBe(true);
  });

  it('refuses a certificate that is not a CA and a key that does not match', () => {
    const leaf = mintLeaf(p256);
    const notCa = codeOf(() => prepareIssuer(leaf, p256.key));
    expect(notCa.code).toBe('ERR_INPUT_INVALID');
    expect(notCa.message).toContain('cA=false');
    const mismatch = codeOf(() => prepareIssuer(p256.der, generateKey('ec-p256')));
    expect(mismatch.code).toBe('ERR_KEY_INVALID');
    expect(mismatch.message).toContain('does not match');
    expect(codeOf(() => prepareIssuer(p256.der, createPublicKey(p256.key))).code).toBe('ERR_KEY_INVALID');
    expect(codeOf(() => prepareIssuer(Buffer.from('3000', 'hex'), p256.key)).code).toBe('ERR_INPUT_INVALID');
  });
});

describe('openssl interop', () => {
  it('openssl x509 -text parses a leaf and shows its extensions', () => {
    const { status, out } = openssl([
      'x509',
      '-noout',
      '-text',
      '-in',
      writePem('text.pem', mintLeaf(p384, { dnsNames: ['web.example.org'] })),
    ]);
    expect(status).toBe(0);
    expect(out).toContain('Version: 3 (0x2)');
    expect(out).toContain('Signature Algorithm: ecdsa-with-SHA384');
    expect(out).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement/);
    expect(out).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(out).toMatch(
      /X509v3 Extended Key Usage: \s*TLS Web Server Authentication, TLS Web Client Authentication/,
    );
    expect(out).toContain('URI:spiffe://example.org/web, DNS:web.example.org');
    expect(out).toContain('Subject: O = Sigil, CN = web.example.org');
  });

  it.each([
    ['P-256', () => p256],
    ['P-384', () => p384],
    ['RSA-2048', () => rsa],
  ])('openssl verify accepts a leaf from a %s root', (_, ca) => {
    const { status, out } = opensslVerify([ca().der], mintLeaf(ca()));
    expect(out).toContain('leaf.pem: OK');
    expect(status).toBe(0);
  });

  it('openssl verify accepts a leaf under an intermediate, with the intermediate untrusted', async () => {
    const intermediate = await makeCa('ec-p384', { signer: rsa });
    const leaf = mintLeaf(intermediate);
    const ok = opensslVerify([rsa.der], leaf, [intermediate.der]);
    expect(ok.out).toContain('leaf.pem: OK');
    expect(ok.status).toBe(0);
    const missing = opensslVerify([rsa.der], leaf);
    expect(missing.status).not.toBe(0);
  });

  it('openssl verify rejects a leaf from a foreign CA', () => {
    const { status, out } = opensslVerify([p256.der], mintLeaf(otherCa));
    expect(status).not.toBe(0);
    expect(out).toMatch(/unable to get local issuer certificate|unable to get issuer certificate/);
  });
});

describe('parseCsr', () => {
  async function peculiarCsr(keyType: KeyType): Promise<{ der: Buffer; pem: string; spki: Buffer }> {
    const key = generateKey(keyType);
    const publicKey = await toCryptoKey(key, 'verify');
    const privateKey = await toCryptoKey(key, 'sign');
    const signingAlgorithm =
      keyType === 'rsa-2048' ? { name: 'RSASSA-PKCS1-v1_5' } : { name: 'ECDSA', hash: 'SHA-384' };
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      {
        name: 'CN=workload',
        keys: { publicKey, privateKey } as Parameters<
          typeof x509.Pkcs10CertificateRequestGenerator.create
        >[0]['keys'],
        signingAlgorithm: signingAlgorithm as Parameters<
          typeof x509.Pkcs10CertificateRequestGenerator.create
        >[0]['signingAlgorithm'],
      },
      webCrypto,
    );
    return {
      der: Buffer.from(csr.rawData),
      pem: csr.toString('pem'),
      spki: createPublicKey(key).export({ type: 'spki', format: 'der' }),
    };
  }

  function opensslCsr(key: KeyObject, name: string, form: 'DER' | 'PEM'): Buffer {
    const keyFile = path.join(dir, `${name}.key.pem`);
    writeFileSync(keyFile, key.export({ type: 'pkcs8', format: 'pem' }));
    const out = path.join(dir, `${name}.csr`);
    const { status, out: log } = openssl([
      'req',
      '-new',
      '-key',
      keyFile,
      '-subj',
      '/O=x',
      '-outform',
      form,
      '-out',
      out,
    ]);
    expect(status, log).toBe(0);
    return readFileSync(out);
  }

  /** A hand-built CSR, so tests can get exactly one thing wrong while keeping a valid signature. */
  function handCsr(
    key: KeyObject,
    opts: { version?: number; algOid?: string; hash?: string; spki?: Buffer } = {},
  ): Buffer {
    const isRsa = key.asymmetricKeyType === 'rsa';
    const info = derSequence(
      derInteger(opts.version ?? 0),
      derSequence(derSet(derSequence(derOid('2.5.4.10'), derUtf8String('x')))),
      opts.spki ?? createPublicKey(key).export({ type: 'spki', format: 'der' }),
      derContext(0, true),
    );
    const algOid = opts.algOid ?? (isRsa ? '1.2.840.113549.1.1.11' : '1.2.840.10045.4.3.2');
    const signature = sign(opts.hash ?? 'sha256', info, key);
    return derSequence(info, derSequence(derOid(algOid)), derBitString(signature));
  }

  it.each(['ec-p256', 'ec-p384', 'rsa-2048'] as const)(
    'accepts a %s CSR made by @peculiar/x509, DER and PEM',
    async (kt) => {
      const { der, pem, spki } = await peculiarCsr(kt);
      for (const input of [der, pem, Buffer.from(pem)]) {
        const parsed = parseCsr(input);
        expect(parsed.keyType).toBe(kt);
        expect(parsed.spkiDer.equals(spki)).toBe(true);
        expect(parsed.publicKey.export({ type: 'spki', format: 'der' }).equals(spki)).toBe(true);
      }
    },
  );

  it.each(['ec-p256', 'rsa-2048'] as const)('accepts a %s CSR made by openssl req', (kt) => {
    const key = generateKey(kt);
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
    const der = opensslCsr(key, `openssl-${kt}`, 'DER');
    expect(der[0]).toBe(0x30);
    const parsed = parseCsr(der);
    expect(parsed.keyType).toBe(kt);
    expect(parsed.spkiDer.equals(spki)).toBe(true);
    const pem = opensslCsr(key, `openssl-${kt}-pem`, 'PEM').toString('utf8');
    expect(pem).toContain('-----BEGIN CERTIFICATE REQUEST-----');
    expect(parseCsr(pem).spkiDer.equals(spki)).toBe(true);
  });

  it('accepts a compressed EC point (the general DER import path) and refuses an off-curve point', () => {
    const key = generateKey('ec-p256');
    const canonical = createPublicKey(key).export({ type: 'spki', format: 'der' });
    const point = canonical.subarray(canonical.length - 65);
    const compressedPoint = ECDH.convertKey(
      point,
      'prime256v1',
      undefined,
      undefined,
      'compressed',
    ) as Buffer;
    const compressed = Buffer.concat([
      Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'),
      compressedPoint,
    ]);
    const parsed = parseCsr(handCsr(key, { spki: compressed }));
    expect(parsed.keyType).toBe('ec-p256');
    expect(parsed.spkiDer.equals(compressed)).toBe(true);
    // OpenSSL keeps the compressed form on export, so compare the points as JWK coordinates.
    expect(parsed.publicKey.export({ format: 'jwk' })).toEqual(
      createPublicKey(key).export({ format: 'jwk' }),
    );

    const offCurve = Buffer.from(canonical);
    offCurve[offCurve.length - 1]! ^= 0x01;
    const err = csrFailure(handCsr(key, { spki: offCurve }));
    expect(err.reason).toBe('key');
    expect(err.message).toContain('not a readable SubjectPublicKeyInfo');
  });

  it('reads RSA keys of other sizes through the same checks', () => {
    const key = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
    const parsed = parseCsr(handCsr(key));
    expect(parsed.keyType).toBe('rsa-2048');
    expect(parsed.publicKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(parsed.spkiDer.equals(createPublicKey(key).export({ type: 'spki', format: 'der' }))).toBe(true);
  });

  it('feeds mintX509Svid directly', () => {
    const key = generateKey('ec-p256');
    const { spkiDer } = parseCsr(handCsr(key));
    const leaf = mintLeaf(p256, { publicKey: spkiDer });
    expect(new NodeX509Certificate(leaf).checkPrivateKey(key)).toBe(true);
  });

  function csrFailure(input: Buffer | string): { message: string; reason: string | undefined } {
    const err = codeOf(() => parseCsr(input));
    expect(err.code).toBe('ERR_CSR_INVALID');
    return err;
  }

  it('rejects a tampered CSR (bad signature)', () => {
    const der = opensslCsr(generateKey('ec-p256'), 'tamper', 'DER');
    const at = der.indexOf(Buffer.from('0c0178', 'hex')) + 2; // the "x" in O=x
    expect(at).toBeGreaterThan(2);
    const tampered = Buffer.from(der);
    tampered[at] = 0x79;
    const err = csrFailure(tampered);
    expect(err.reason).toBe('signature');
    expect(err.message).toContain('signature does not verify');
    const sigFlipped = Buffer.from(der);
    sigFlipped[sigFlipped.length - 3]! ^= 0x01;
    expect(csrFailure(sigFlipped).reason).toBe('signature');
  });

  it('rejects garbage, truncated, trailing bytes and wrong PEM labels', () => {
    expect(csrFailure(Buffer.from('hello world')).message).toContain('neither DER');
    expect(csrFailure(Buffer.alloc(0)).reason).toBe('format');
    expect(csrFailure('not pem at all').message).toContain('CERTIFICATE REQUEST');
    expect(csrFailure(encodePem('CERTIFICATE', p256.der)).message).toContain('found "CERTIFICATE"');
    const der = handCsr(generateKey('ec-p256'));
    const truncated = csrFailure(der.subarray(0, der.length - 5));
    expect(truncated.reason).toBe('malformed');
    expect(truncated.message).toContain('truncated');
    expect(csrFailure(Buffer.concat([der, Buffer.from([0])])).reason).toBe('trailing');
    expect(csrFailure(Buffer.from('3000', 'hex')).reason).toBe('malformed');
  });

  it('rejects a CSR version other than v1', () => {
    const err = csrFailure(handCsr(generateKey('ec-p256'), { version: 1 }));
    expect(err.reason).toBe('version');
    expect(err.message).toContain('unsupported version 2');
    expect(parseCsr(handCsr(generateKey('ec-p256'))).keyType).toBe('ec-p256');
  });

  it('rejects unsupported keys and algorithms', () => {
    const ed = generateKeyPairSync('ed25519').privateKey;
    const edCsr = opensslCsr(ed, 'ed25519', 'DER');
    expect(csrFailure(edCsr).message).toContain('unsupported signature algorithm 1.3.101.112');

    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey;
    const curve = csrFailure(handCsr(p521, { algOid: '1.2.840.10045.4.3.4', hash: 'sha512' }));
    expect(curve.reason).toBe('key');
    expect(curve.message).toContain('unsupported EC curve');

    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    const rsaSmall = csrFailure(handCsr(small));
    expect(rsaSmall.reason).toBe('key');
    expect(rsaSmall.message).toContain('RSA key of 1024 bits is too small');

    const sha1 = csrFailure(
      handCsr(generateKey('rsa-2048'), { algOid: '1.2.840.113549.1.1.5', hash: 'sha1' }),
    );
    expect(sha1.message).toContain('unsupported signature algorithm 1.2.840.113549.1.1.5');

    const mismatch = csrFailure(handCsr(generateKey('ec-p256'), { algOid: '1.2.840.113549.1.1.11' }));
    expect(mismatch.message).toContain('does not fit its ec-p256 key');
  });
});

describe('verifyX509Svid', () => {
  const bundles = () =>
    new Map<string, Buffer[]>([
      ['example.org', [p256.der, p384.der]],
      ['other.org', [otherCa.der]],
    ]);
  const bundleFor = (td: TrustDomain) => bundles().get(td.name);

  function failure(chain: Buffer[], nowMs = NOW, lookup = bundleFor) {
    return codeOf(() => verifyX509Svid(chain, lookup, nowMs));
  }

  it('accepts a leaf signed by a bundle root and returns the ID and path', () => {
    const leaf = mintLeaf(p384);
    const asked: string[] = [];
    const result = verifyX509Svid(
      [leaf],
      (td) => {
        asked.push(td.name);
        return bundleFor(td);
      },
      NOW,
    );
    expect(result.spiffeId.toString()).toBe('spiffe://example.org/web');
    expect(result.chain).toEqual([leaf, p384.der]);
    expect(asked).toEqual(['example.org']);
  });

  it('accepts a path through intermediates given in any order', async () => {
    const mid = await makeCa('ec-p256', { signer: p256 });
    const low = await makeCa('rsa-2048', { signer: mid });
    const leaf = mintLeaf(low);
    expect(verifyX509Svid([leaf, low.der, mid.der], bundleFor, NOW).chain).toEqual([
      leaf,
      low.der,
      mid.der,
      p256.der,
    ]);
    expect(verifyX509Svid([leaf, mid.der, low.der], bundleFor, NOW).chain).toEqual([
      leaf,
      low.der,
      mid.der,
      p256.der,
    ]);
    const missing = failure([leaf, low.der]);
    expect(missing.code).toBe('ERR_X509_VERIFY_FAILED');
    expect(missing.message).toContain('no authority in the bundle for "example.org" signed the intermediate');
  });

  it('treats a bundle authority as a trust anchor even when it is not self-signed', async () => {
    const mid = await makeCa('ec-p256', { signer: otherCa });
    const leaf = mintLeaf(mid);
    expect(verifyX509Svid([leaf], () => [mid.der], NOW).chain).toEqual([leaf, mid.der]);
  });

  it('rejects a leaf signed by a CA of another trust domain (bundle chosen by the leaf ID only)', () => {
    const leaf = mintLeaf(otherCa);
    const asked: string[] = [];
    const err = failure([leaf], NOW, (td) => {
      asked.push(td.name);
      return bundleFor(td);
    });
    expect(err.code).toBe('ERR_X509_VERIFY_FAILED');
    expect(err.message).toContain('no authority in the bundle for "example.org" signed the leaf');
    expect(asked).toEqual(['example.org']);
  });

  it('reports a missing bundle', () => {
    const err = failure([mintLeaf(p256, { spiffeId: parseSpiffeId('spiffe://nowhere.test/x') })]);
    expect(err.code).toBe('ERR_BUNDLE_NOT_FOUND');
    expect(err.message).toContain('"nowhere.test"');
    expect(failure([mintLeaf(p256)], NOW, () => []).code).toBe('ERR_BUNDLE_NOT_FOUND');
  });

  it('rejects an expired and a not-yet-valid leaf, saying when', () => {
    const leaf = mintLeaf(p256, { notBeforeMs: NOW - HOUR, notAfterMs: NOW });
    expect(verifyX509Svid([leaf], bundleFor, NOW).spiffeId.path).toBe('/web');
    const expired = failure([leaf], NOW + 1000);
    expect(expired.code).toBe('ERR_X509_VERIFY_FAILED');
    expect(expired.message).toContain('leaf expired at 2026-01-15T12:00:00.000Z');
    const early = failure([leaf], NOW - 2 * HOUR);
    expect(early.code).toBe('ERR_X509_VERIFY_FAILED');
    expect(early.message).toContain('leaf is not valid until 2026-01-15T11:00:00.000Z');
  });

  it('checks the validity of intermediates and anchors too', async () => {
    const future = await makeCa('ec-p256', { signer: p256, notBeforeMs: NOW + HOUR });
    const leaf = mintLeaf(future, { notBeforeMs: NOW - HOUR });
    const err = failure([leaf, future.der]);
    expect(err.code).toBe('ERR_X509_VERIFY_FAILED');
    expect(err.message).toMatch(/intermediate .* is not valid until 2026-01-15T13:00:00.000Z/);

    const oldRoot = await makeCa('ec-p256', { notBeforeMs: NOW - 10 * DAY, notAfterMs: NOW + DAY });
    const oldLeaf = mintLeaf(oldRoot, { notBeforeMs: NOW, notAfterMs: NOW + HOUR });
    expect(verifyX509Svid([oldLeaf], () => [oldRoot.der], NOW).chain.length).toBe(2);
    const anchorErr = failure([oldLeaf], NOW - 11 * DAY + 1, () => [oldRoot.der]);
    expect(anchorErr.code).toBe('ERR_X509_VERIFY_FAILED');
  });

  it('rejects a leaf whose signature does not verify', () => {
    const forged = mintX509Svid(
      { spiffeId: WEB, publicKey: generateKey('ec-p256'), notBeforeMs: NOW - 1000, notAfterMs: NOW + HOUR },
      { ...p256.issuer, key: generateKey('ec-p256') },
    );
    // Same issuer name and AKI as p256's leaves, so only the signature gives it away.
    expect(new NodeX509Certificate(forged).checkIssued(new NodeX509Certificate(p256.der))).toBe(true);
    const err = failure([forged]);
    expect(err.code).toBe('ERR_X509_VERIFY_FAILED');
    expect(err.message).toContain('leaf signature does not verify');
    expect(opensslVerify([p256.der], forged).status).not.toBe(0);
  });

  it('rejects a CA=true leaf', async () => {
    const err = failure([await peculiarLeaf(p256, { uris: ['spiffe://example.org/web'], isCa: true })]);
    expect(err.code).toBe('ERR_X509_SVID_INVALID');
    expect(err.message).toContain('cA=true');
  });

  it('rejects two, zero or non-SPIFFE URI SANs and a root-path ID', async () => {
    const two = failure([
      await peculiarLeaf(p256, { uris: ['spiffe://example.org/a', 'spiffe://example.org/b'] }),
    ]);
    expect(two.code).toBe('ERR_X509_SVID_INVALID');
    expect(two.message).toContain('leaf has 2 URI SANs');
    expect(failure([await peculiarLeaf(p256, { uris: [], withSan: false })]).message).toContain('0 URI SANs');
    const https = failure([await peculiarLeaf(p256, { uris: ['https://example.org/web'] })]);
    expect(https.code).toBe('ERR_X509_SVID_INVALID');
    expect(https.message).toContain('not a SPIFFE ID');
    const root = failure([await peculiarLeaf(p256, { uris: ['spiffe://example.org'] })]);
    expect(root.code).toBe('ERR_X509_SVID_INVALID');
    expect(root.message).toContain('has no path');
  });

  it('rejects leaf key usages: keyCertSign/cRLSign present, or digitalSignature missing', async () => {
    const F = x509.KeyUsageFlags;
    const certSign = failure([
      await peculiarLeaf(p256, {
        uris: ['spiffe://example.org/web'],
        keyUsage: F.digitalSignature | F.keyCertSign,
      }),
    ]);
    expect(certSign.code).toBe('ERR_X509_SVID_INVALID');
    expect(certSign.message).toContain('keyCertSign or cRLSign');
    const noSig = failure([
      await peculiarLeaf(p256, { uris: ['spiffe://example.org/web'], keyUsage: F.keyEncipherment }),
    ]);
    expect(noSig.message).toContain('lacks digitalSignature');
    // The peculiar-built fixture itself is a valid SVID when nothing is wrong with it.
    const good = await peculiarLeaf(p256, { uris: ['spiffe://example.org/web'] });
    expect(verifyX509Svid([good], bundleFor, NOW).spiffeId.toString()).toBe('spiffe://example.org/web');
  });

  it('rejects an empty chain and unreadable certificates', () => {
    expect(failure([]).code).toBe('ERR_X509_SVID_INVALID');
    const garbage = failure([Buffer.from('3003020101', 'hex')]);
    expect(garbage.code).toBe('ERR_X509_SVID_INVALID');
    expect(garbage.message).toContain('leaf is not a readable certificate');
    const badBundle = failure([mintLeaf(p256)], NOW, () => [Buffer.from('00', 'hex')]);
    expect(badBundle.code).toBe('ERR_BUNDLE_INVALID');
  });
});

describe('describeCertificate', () => {
  it('describes a leaf', () => {
    const der = mintLeaf(p256, { dnsNames: ['web.example.org'], serial: Buffer.from('0abc', 'hex') });
    const d = describeCertificate(der);
    expect(d).toEqual({
      subject: 'O=Sigil, CN=web.example.org',
      issuer: describeCertificate(p256.der).subject,
      serialHex: '0abc',
      notBeforeMs: NOW - 10_000,
      notAfterMs: NOW + HOUR,
      spiffeId: 'spiffe://example.org/web',
      isCa: false,
      subjectKeyIdHex: new x509.X509Certificate(der).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId,
      fingerprintSha256Hex: createHash('sha256').update(der).digest('hex'),
    });
  });

  it('describes a CA, and returns null for a non-SPIFFE URI', async () => {
    const d = describeCertificate(p256.der);
    expect(d.isCa).toBe(true);
    expect(d.spiffeId).toBe('spiffe://example.org');
    expect(d.subject).toBe(`O=Sigil, serialNumber=${d.serialHex}`);
    expect(describeCertificate(await peculiarLeaf(p256, { uris: ['https://x.test/'] })).spiffeId).toBeNull();
  });

  it('throws ERR_DER_INVALID for garbage', () => {
    expect(codeOf(() => describeCertificate(Buffer.from('nope'))).code).toBe('ERR_DER_INVALID');
  });
});
