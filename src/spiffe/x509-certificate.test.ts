// describeCertificate: the facts CLIs and logs show about a certificate.
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { describeCertificate } from './x509-svid.js';
import { codeOf, HOUR, mintLeaf, NOW, p256, peculiarLeaf, useTestCas } from './x509-svid.test-support.js';

useTestCas();

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
