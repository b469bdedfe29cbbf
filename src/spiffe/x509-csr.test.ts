// CSR reading: every key type, PEM and DER, and each malformed shape refused with its reason.
import 'reflect-metadata';
import {
  createPublicKey,
  ECDH,
  generateKeyPairSync,
  type KeyObject,
  X509Certificate as NodeX509Certificate,
  sign,
} from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { derBitString, derContext, derInteger, derOid, derSequence, derSet, derUtf8String } from './der.js';
import { generateKey, type KeyType } from './keys.js';
import { encodePem } from './pem.js';
import { parseCsr } from './x509-svid.js';
import {
  codeOf,
  dir,
  mintLeaf,
  openssl,
  p256,
  toCryptoKey,
  useTestCas,
  webCrypto,
} from './x509-svid.test-support.js';

useTestCas();

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
