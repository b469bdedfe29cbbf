// Shared fixtures for the X509-SVID tests: test CAs of each key type, a leaf minter, certificates
// built with @peculiar/x509 for shapes we refuse to produce, and an openssl runner.
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { createPublicKey, type KeyObject, webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll } from 'vitest';
import { isSigilError, type SigilErrorCode } from './errors.js';
import { parseSpiffeId, parseTrustDomain, type TrustDomain } from './id.js';
import { generateKey, type KeyType } from './keys.js';
import { encodePem } from './pem.js';
import { createCaCertificate } from './x509-authority.js';
import { type MintX509SvidParams, mintX509Svid, prepareIssuer, type X509Issuer } from './x509-svid.js';

export const webCrypto = webcrypto as unknown as NonNullable<
  Parameters<typeof x509.X509CertificateGenerator.create>[1]
>;
export type CryptoKeyT = x509.X509CertificateCreateWithKeyParams['signingKey'];

export const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const EXAMPLE = parseTrustDomain('example.org');
export const OTHER = parseTrustDomain('other.org');
export const WEB = parseSpiffeId('spiffe://example.org/web');

export const OID = {
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  ski: '2.5.29.14',
  aki: '2.5.29.35',
  san: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

export interface TestCa {
  readonly der: Buffer;
  readonly key: KeyObject;
  readonly issuer: X509Issuer;
}

export async function makeCa(
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

export function mintLeaf(ca: TestCa, overrides: Partial<MintX509SvidParams> = {}): Buffer {
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

export function codeOf(fn: () => unknown): {
  code: SigilErrorCode;
  message: string;
  reason: string | undefined;
} {
  try {
    fn();
  } catch (err) {
    if (isSigilError(err)) return { code: err.code, message: err.message, reason: err.reason };
    throw err;
  }
  throw new Error('expected a SigilError, nothing was thrown');
}

export async function toCryptoKey(key: KeyObject, usage: 'sign' | 'verify'): Promise<CryptoKeyT> {
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
export async function peculiarLeaf(
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

export let dir = '';
export function openssl(args: string[]): { status: number | null; out: string } {
  const result = spawnSync('openssl', args, { encoding: 'utf8', cwd: dir });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}
export function writePem(name: string, ...ders: Buffer[]): string {
  const file = path.join(dir, name);
  writeFileSync(file, ders.map((d) => encodePem('CERTIFICATE', d)).join(''));
  return file;
}
export function opensslVerify(bundle: Buffer[], leaf: Buffer, intermediates: Buffer[] = []) {
  const args = ['verify', '-attime', String(Math.floor(NOW / 1000)), '-partial_chain'];
  args.push('-CAfile', writePem('bundle.pem', ...bundle));
  if (intermediates.length > 0) args.push('-untrusted', writePem('intermediates.pem', ...intermediates));
  args.push(writePem('leaf.pem', leaf));
  return openssl(args);
}

export let p256: TestCa;
export let p384: TestCa;
export let rsa: TestCa;
export let otherCa: TestCa;

/**
 * Registers the CAs every X509-SVID test file uses (made once per file: RSA key generation is slow)
 * and a temp dir for openssl. The CA bindings above are live: read them inside tests only.
 */
export function useTestCas(): void {
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
}
