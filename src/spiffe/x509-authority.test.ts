import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { createPublicKey, type KeyObject, webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readChildren, readTlv } from './der.js';
import { isSigilError, type SigilErrorCode } from './errors.js';
import { parseSpiffeId, parseTrustDomain } from './id.js';
import { generateKey, type KeyType } from './keys.js';
import { encodePem } from './pem.js';
import { certificateMatchesKey, createCaCertificate, parseCaCertificate } from './x509-authority.js';
import { describeCertificate, mintX509Svid, prepareIssuer, verifyX509Svid } from './x509-svid.js';

const webCrypto = webcrypto as unknown as NonNullable<
  Parameters<typeof x509.X509CertificateGenerator.create>[1]
>;
type CryptoKeyT = x509.X509CertificateCreateWithKeyParams['signingKey'];

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const DAY = 86_400_000;
const TD = parseTrustDomain('example.org');

interface Root {
  readonly der: Buffer;
  readonly key: KeyObject;
}

async function makeRoot(keyType: KeyType, notAfterMs = NOW + 365 * DAY): Promise<Root> {
  const key = generateKey(keyType);
  return {
    der: await createCaCertificate({ trustDomain: TD, key, notBeforeMs: NOW - DAY, notAfterMs }),
    key,
  };
}

async function rejects(promise: Promise<unknown>): Promise<{ code: SigilErrorCode; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (isSigilError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a SigilError, nothing was thrown');
}

function throws(fn: () => unknown): { code: SigilErrorCode; message: string } {
  try {
    fn();
  } catch (err) {
    if (isSigilError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a SigilError, nothing was thrown');
}

let dir = '';
let roots: Record<KeyType, Root>;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-x509-authority-'));
  const [p256, p384, rsa] = await Promise.all([
    makeRoot('ec-p256'),
    makeRoot('ec-p384'),
    makeRoot('rsa-2048'),
  ]);
  roots = { 'ec-p256': p256, 'ec-p384': p384, 'rsa-2048': rsa };
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function signatureAlgorithmHex(der: Buffer): string {
  const parts = readChildren(der, readTlv(der));
  return der.subarray(parts[1]!.start, parts[1]!.end).toString('hex');
}

describe('createCaCertificate', () => {
  it.each([
    ['ec-p256', '300a06082a8648ce3d040302'],
    ['ec-p384', '300a06082a8648ce3d040303'],
    ['rsa-2048', '300d06092a864886f70d01010b0500'],
  ] as const)('makes a self-signed %s root in SPIRE X509 CA shape', async (keyType, sigAlg) => {
    const { der, key } = roots[keyType];
    const cert = new x509.X509Certificate(der);
    const serialHex = cert.serialNumber.toLowerCase();
    expect(cert.subject).toBe(`O=Sigil, 2.5.4.5=${serialHex}`);
    expect(cert.issuer).toBe(cert.subject);
    expect(
      Buffer.from(cert.subjectName.toArrayBuffer()).equals(Buffer.from(cert.issuerName.toArrayBuffer())),
    ).toBe(true);
    expect(cert.notBefore.getTime()).toBe(NOW - DAY);
    expect(cert.notAfter.getTime()).toBe(NOW + 365 * DAY);
    expect(signatureAlgorithmHex(der)).toBe(sigAlg);
    expect(Buffer.from(cert.publicKey.rawData)).toEqual(
      createPublicKey(key).export({ type: 'spki', format: 'der' }),
    );

    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.critical).toBe(true);
    expect(bc.ca).toBe(true);
    expect(bc.pathLength).toBeUndefined();
    expect(Buffer.from(bc.value).toString('hex')).toBe('30030101ff');

    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(Buffer.from(ku.value).toString('hex')).toBe('03020106');

    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)).toBeNull();
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.names.toJSON()).toEqual([{ type: 'url', value: 'spiffe://example.org' }]);

    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)!;
    expect(ski.keyId).toBe(Buffer.from(await cert.publicKey.getKeyIdentifier(webCrypto)).toString('hex'));
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(ski.keyId);
    expect(await cert.isSelfSigned(webCrypto)).toBe(true);
  });

  it('gives each CA its own subject: serialNumber RDN equal to the certificate serial', async () => {
    const key = generateKey('ec-p256');
    const a = await createCaCertificate({
      trustDomain: TD,
      key,
      serial: Buffer.from('00c0ffee', 'hex'),
      notBeforeMs: NOW,
      notAfterMs: NOW + DAY,
    });
    const b = await createCaCertificate({ trustDomain: TD, key, notBeforeMs: NOW, notAfterMs: NOW + DAY });
    const da = describeCertificate(a);
    expect(da.serialHex).toBe('c0ffee');
    expect(da.subject).toBe('O=Sigil, serialNumber=c0ffee');
    expect(describeCertificate(b).subject).not.toBe(da.subject);
    // Random serials are 128 bits with the top bit cleared: positive, below 2^127.
    const serial = BigInt(`0x${describeCertificate(b).serialHex}`);
    expect(serial > 0n && serial < 2n ** 127n).toBe(true);
  });

  it('signs an intermediate: issuer and AKI from the signer, notAfter capped at the signer', async () => {
    const root = roots['ec-p384'];
    const key = generateKey('ec-p256');
    const der = await createCaCertificate({
      trustDomain: TD,
      key,
      signer: { certDer: root.der, key: root.key },
      notBeforeMs: NOW,
      notAfterMs: NOW + 10 * 365 * DAY,
    });
    const cert = new x509.X509Certificate(der);
    const rootCert = new x509.X509Certificate(root.der);
    expect(
      Buffer.from(cert.issuerName.toArrayBuffer()).equals(Buffer.from(rootCert.subjectName.toArrayBuffer())),
    ).toBe(true);
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(
      rootCert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId,
    );
    expect(cert.notAfter.getTime()).toBe(rootCert.notAfter.getTime());
    expect(signatureAlgorithmHex(der)).toBe('300a06082a8648ce3d040303');
    expect(await cert.verify({ publicKey: rootCert, signatureOnly: true }, webCrypto)).toBe(true);
    expect(await cert.isSelfSigned(webCrypto)).toBe(false);

    // The whole chain works: openssl and our verifier accept a leaf minted under the intermediate.
    const leaf = mintX509Svid(
      {
        spiffeId: parseSpiffeId('spiffe://example.org/db'),
        publicKey: generateKey('ec-p256'),
        notBeforeMs: NOW,
        notAfterMs: NOW + 3_600_000,
      },
      prepareIssuer(der, key),
    );
    expect(verifyX509Svid([leaf, der], () => [root.der], NOW + 1000).chain).toEqual([leaf, der, root.der]);
    const write = (name: string, d: Buffer) => {
      const file = path.join(dir, name);
      writeFileSync(file, encodePem('CERTIFICATE', d));
      return file;
    };
    const result = spawnSync(
      'openssl',
      [
        'verify',
        '-attime',
        String(NOW / 1000 + 1),
        '-CAfile',
        write('root.pem', root.der),
        '-untrusted',
        write('intermediate.pem', der),
        write('leaf.pem', leaf),
      ],
      { encoding: 'utf8' },
    );
    expect(result.stdout).toContain('leaf.pem: OK');
    expect(result.status).toBe(0);
  });

  it('refuses an empty validity, a bad serial, a public key and a signer that is not a CA', async () => {
    const key = generateKey('ec-p256');
    const base = { trustDomain: TD, key, notBeforeMs: NOW, notAfterMs: NOW + DAY };
    expect((await rejects(createCaCertificate({ ...base, notAfterMs: NOW }))).code).toBe('ERR_INPUT_INVALID');
    const capped = await rejects(
      createCaCertificate({
        ...base,
        signer: { certDer: roots['ec-p256'].der, key: roots['ec-p256'].key },
        notBeforeMs: NOW + 400 * DAY,
        notAfterMs: NOW + 500 * DAY,
      }),
    );
    expect(capped.code).toBe('ERR_INPUT_INVALID');
    expect(capped.message).toContain("capped at the signer's notAfter");
    expect((await rejects(createCaCertificate({ ...base, serial: Buffer.alloc(2) }))).code).toBe(
      'ERR_INPUT_INVALID',
    );
    expect((await rejects(createCaCertificate({ ...base, key: createPublicKey(key) }))).code).toBe(
      'ERR_KEY_INVALID',
    );
    const leaf = mintX509Svid(
      {
        spiffeId: parseSpiffeId('spiffe://example.org/w'),
        publicKey: key,
        notBeforeMs: NOW,
        notAfterMs: NOW + DAY,
      },
      prepareIssuer(roots['ec-p256'].der, roots['ec-p256'].key),
    );
    const notCa = await rejects(createCaCertificate({ ...base, signer: { certDer: leaf, key } }));
    expect(notCa.code).toBe('ERR_INPUT_INVALID');
    expect(notCa.message).toContain('cA=false');
  });
});

describe('parseCaCertificate', () => {
  async function peculiarCa(opts: { isCa: boolean; keyUsage?: number }): Promise<Buffer> {
    const key = generateKey('ec-p256');
    const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
    const privateKey = (await webcrypto.subtle.importKey(
      'pkcs8',
      key.export({ type: 'pkcs8', format: 'der' }),
      algorithm,
      false,
      ['sign'],
    )) as unknown as CryptoKeyT;
    const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(opts.isCa, undefined, true)];
    if (opts.keyUsage !== undefined) extensions.push(new x509.KeyUsagesExtension(opts.keyUsage, true));
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: '01',
        subject: 'CN=upstream',
        issuer: 'CN=upstream',
        notBefore: new Date(NOW - DAY),
        notAfter: new Date(NOW + DAY),
        publicKey: createPublicKey(key).export({ type: 'spki', format: 'der' }),
        signingKey: privateKey,
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

  const badCas: { noKu: Buffer; digitalSignatureOnly: Buffer } = {
    noKu: Buffer.alloc(0),
    digitalSignatureOnly: Buffer.alloc(0),
  };
  beforeAll(async () => {
    badCas.noKu = await peculiarCa({ isCa: true });
    badCas.digitalSignatureOnly = await peculiarCa({
      isCa: true,
      keyUsage: x509.KeyUsageFlags.digitalSignature,
    });
  });

  it('accepts our CAs as DER, PEM string and PEM buffer', () => {
    const { der } = roots['ec-p256'];
    for (const input of [der, encodePem('CERTIFICATE', der), Buffer.from(encodePem('CERTIFICATE', der))]) {
      const ca = parseCaCertificate(input);
      expect(ca.isCa).toBe(true);
      expect(ca.der.equals(der)).toBe(true);
      expect(ca.spiffeId).toBe('spiffe://example.org');
    }
  });

  it('accepts a foreign CA with keyCertSign and no SPIFFE SAN', async () => {
    const der = await peculiarCa({ isCa: true, keyUsage: x509.KeyUsageFlags.keyCertSign });
    const ca = parseCaCertificate(der);
    expect(ca.subject).toBe('CN=upstream');
    expect(ca.spiffeId).toBeNull();
  });

  it('rejects certificates that cannot sign, with ERR_UPSTREAM_INVALID', async () => {
    const notCa = throws(() =>
      parseCaCertificate(
        mintX509Svid(
          {
            spiffeId: parseSpiffeId('spiffe://example.org/w'),
            publicKey: generateKey('ec-p256'),
            notBeforeMs: NOW,
            notAfterMs: NOW + DAY,
          },
          prepareIssuer(roots['ec-p256'].der, roots['ec-p256'].key),
        ),
      ),
    );
    expect(notCa.code).toBe('ERR_UPSTREAM_INVALID');
    expect(notCa.message).toContain('is not a CA');

    const noKu = throws(() => parseCaCertificate(badCas.noKu));
    expect(noKu.code).toBe('ERR_UPSTREAM_INVALID');
    expect(noKu.message).toContain('has no keyUsage extension');

    const wrongKu = throws(() => parseCaCertificate(badCas.digitalSignatureOnly));
    expect(wrongKu.code).toBe('ERR_UPSTREAM_INVALID');
    expect(wrongKu.message).toContain('lacks the keyCertSign key usage');
  });

  it('rejects garbage, several certificates, and out-of-validity with nowMs', async () => {
    const { der } = roots['ec-p256'];
    expect(throws(() => parseCaCertificate(Buffer.from('3003020101', 'hex'))).code).toBe(
      'ERR_UPSTREAM_INVALID',
    );
    expect(throws(() => parseCaCertificate('hello')).message).toContain('found 0');
    const two = encodePem('CERTIFICATE', der) + encodePem('CERTIFICATE', roots['ec-p384'].der);
    expect(throws(() => parseCaCertificate(two)).message).toContain(
      'exactly one PEM CERTIFICATE block, found 2',
    );
    expect(parseCaCertificate(der, NOW).isCa).toBe(true);
    expect(throws(() => parseCaCertificate(der, NOW + 366 * DAY)).message).toContain('expired at');
    expect(throws(() => parseCaCertificate(der, NOW - 2 * DAY)).message).toContain('not valid until');
  });
});

describe('certificateMatchesKey', () => {
  it('matches the private and public key of the certificate, and nothing else', () => {
    for (const { der, key } of Object.values(roots)) {
      expect(certificateMatchesKey(der, key)).toBe(true);
      expect(certificateMatchesKey(der, createPublicKey(key))).toBe(true);
    }
    expect(certificateMatchesKey(roots['ec-p256'].der, roots['ec-p384'].key)).toBe(false);
    expect(certificateMatchesKey(roots['ec-p256'].der, generateKey('ec-p256'))).toBe(false);
  });

  it('throws for an unreadable certificate instead of calling it a mismatch', () => {
    expect(throws(() => certificateMatchesKey(Buffer.from('00'), roots['ec-p256'].key)).code).toBe(
      'ERR_DER_INVALID',
    );
  });
});
