// Chain verification per the SPIFFE spec §5: leaf rules, path building, validity and constraints.
import 'reflect-metadata';
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { parseSpiffeId, type TrustDomain } from './id.js';
import { generateKey } from './keys.js';
import { mintX509Svid, verifyX509Svid } from './x509-svid.js';
import {
  codeOf,
  DAY,
  HOUR,
  makeCa,
  mintLeaf,
  NOW,
  opensslVerify,
  otherCa,
  p256,
  p384,
  peculiarLeaf,
  useTestCas,
  WEB,
} from './x509-svid.test-support.js';

useTestCas();

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
