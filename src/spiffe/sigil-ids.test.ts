import { describe, expect, it } from 'vitest';
import { isSigilError } from './errors.js';
import { parseSpiffeId, parseTrustDomain } from './id.js';
import { generateKey } from './keys.js';
import { checkNotReserved, isReservedSpiffeId, serverCertificateProblem } from './sigil-ids.js';
import { createCaCertificate } from './x509-authority.js';
import { mintX509Svid, prepareIssuer } from './x509-svid.js';

const td = parseTrustDomain('example.org');
const NOW = Date.UTC(2026, 0, 15);

describe('reserved IDs', () => {
  it.each([
    ['spiffe://example.org/sigil', true],
    ['spiffe://example.org/sigil/server', true],
    ['spiffe://example.org/sigil/agent/join_token/x', true],
    ['spiffe://other.org/sigil/server', true],
    ['spiffe://example.org/sigilx', false],
    ['spiffe://example.org/Sigil/server', false],
    ['spiffe://example.org/web/sigil', false],
    ['spiffe://example.org', false],
  ])('%s reserved: %s', (text, reserved) => {
    expect(isReservedSpiffeId(parseSpiffeId(text))).toBe(reserved);
    expect(isReservedSpiffeId(text)).toBe(reserved);
  });

  it('refuses naming the field, the ID and why', () => {
    let err: unknown;
    try {
      checkNotReserved(parseSpiffeId('spiffe://example.org/sigil/server'), 'body.spiffe_id');
    } catch (e) {
      err = e;
    }
    expect(isSigilError(err, 'ERR_SPIFFE_ID_RESERVED')).toBe(true);
    expect(err).toMatchObject({
      field: 'body.spiffe_id',
      message:
        'body.spiffe_id: SPIFFE ID "spiffe://example.org/sigil/server" is reserved for Sigil\'s server and agents (everything under spiffe://example.org/sigil); choose another path',
    });
  });
});

describe('serverCertificateProblem', () => {
  async function leaf(path: string, isSigilServer: boolean): Promise<Buffer> {
    const key = generateKey('ec-p256');
    const ca = await createCaCertificate({
      trustDomain: td,
      key,
      notBeforeMs: NOW - 1,
      notAfterMs: NOW + 1e9,
    });
    return mintX509Svid(
      {
        spiffeId: parseSpiffeId(`spiffe://example.org${path}`),
        publicKey: generateKey('ec-p256'),
        notBeforeMs: NOW,
        notAfterMs: NOW + 60_000,
        isSigilServer,
      },
      prepareIssuer(ca, key),
    );
  }

  it('accepts the server ID with the marker', async () => {
    expect(serverCertificateProblem(await leaf('/sigil/server', true), td)).toBeUndefined();
  });

  it('refuses the right URI without the marker', async () => {
    expect(serverCertificateProblem(await leaf('/sigil/server', false), td)).toMatch(
      /lacks the Sigil server marker .*it was not issued as the server's SVID/,
    );
  });

  it('refuses the marker on another ID, or in another trust domain', async () => {
    expect(serverCertificateProblem(await leaf('/web', true), td)).toMatch(/expected exactly/);
    expect(
      serverCertificateProblem(await leaf('/sigil/server', true), parseTrustDomain('other.org')),
    ).toMatch(/expected exactly "spiffe:\/\/other.org\/sigil\/server"/);
  });

  it('refuses garbage', () => {
    expect(serverCertificateProblem(Buffer.from('nope'), td)).toMatch(/unreadable/);
  });
});
