// Minting: leaf content per spiffe-facts §2.1, the issuer checks, and what openssl makes of a leaf.
import 'reflect-metadata';
import { createPublicKey, X509Certificate as NodeX509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { readChildren, readTlv, tlvValue } from './der.js';
import { quote } from './errors.js';
import { parseSpiffeId } from './id.js';
import { generateKey } from './keys.js';
import { checkDnsName, describeCertificate, prepareIssuer } from './x509-svid.js';
import {
  codeOf,
  DAY,
  HOUR,
  makeCa,
  mintLeaf,
  NOW,
  OID,
  openssl,
  opensslVerify,
  otherCa,
  p256,
  p384,
  rsa,
  useTestCas,
  webCrypto,
  writePem,
} from './x509-svid.test-support.js';

useTestCas();

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
    // A sound request to an expired issuer: the CA is unavailable, the request is not at fault.
    const err = codeOf(() =>
      mintLeaf(p256, { notBeforeMs: p256.issuer.notAfterMs, notAfterMs: NOW + 400 * DAY }),
    );
    expect(err.code).toBe('ERR_CA_UNAVAILABLE');
    expect(err.message).toContain('the issuing CA expired at');
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
      ['192.168.1.10', 'it is an IP address'],
      ['::1', 'it is an IP address'],
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
