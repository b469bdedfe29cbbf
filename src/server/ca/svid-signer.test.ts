// The CA's two signing surfaces: workload methods refuse Sigil's reserved namespace whatever the
// caller passes; the server's SVID (and only it) carries the server marker, and stays an X509-SVID
// that openssl verifies.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../../test/support/harness.js';
import { ManualClock } from '../../spiffe/clock.js';
import { isSigilError } from '../../spiffe/errors.js';
import { parseSpiffeId, parseTrustDomain } from '../../spiffe/id.js';
import { generateKey } from '../../spiffe/keys.js';
import { encodePem } from '../../spiffe/pem.js';
import { SIGIL_SERVER_MARKER_OID, serverCertificateProblem } from '../../spiffe/sigil-ids.js';
import { createCaCertificate } from '../../spiffe/x509-authority.js';
import { describeCertificate, parseCsr, prepareIssuer, verifyX509Svid } from '../../spiffe/x509-svid.js';
import { SvidSigner } from './svid-signer.js';

const HOUR = 3_600_000;
const td = parseTrustDomain('example.org');
const id = (path: string) => parseSpiffeId(`spiffe://example.org${path}`);
const clock = new ManualClock(Date.now());
let tmp: ReturnType<typeof makeTempDir>;
let caDer: Buffer;
let signer: SvidSigner;

function openssl(...args: string[]) {
  const result = spawnSync('openssl', args, { cwd: tmp.dir, encoding: 'utf8' });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

function writePem(name: string, ...ders: readonly Buffer[]): string {
  const file = path.join(tmp.dir, name);
  writeFileSync(file, ders.map((d) => encodePem('CERTIFICATE', d)).join(''));
  return file;
}

/** A CSR made by openssl that asks for the server marker extension (and a server SAN) for itself. */
function csrAskingForTheMarker(): Buffer {
  const key = path.join(tmp.dir, 'csr.key');
  writeFileSync(key, generateKey('ec-p256').export({ type: 'pkcs8', format: 'pem' }) as string);
  const made = openssl(
    ...['req', '-new', '-key', key, '-subj', '/O=Mallory', '-outform', 'DER', '-out', 'asks.csr'],
    ...[
      '-addext',
      `${SIGIL_SERVER_MARKER_OID}=DER:0500`,
      '-addext',
      'subjectAltName=URI:spiffe://example.org/sigil/server',
    ],
  );
  expect(made.status, made.out).toBe(0);
  // The request really carries both: the CA must be what drops them.
  const asked = openssl('req', '-inform', 'DER', '-in', 'asks.csr', '-noout', '-text');
  expect(asked.out).toContain(SIGIL_SERVER_MARKER_OID);
  expect(asked.out).toContain('URI:spiffe://example.org/sigil/server');
  return readFileSync(path.join(tmp.dir, 'asks.csr'));
}

beforeAll(async () => {
  tmp = makeTempDir('sigil-signer-');
  const key = generateKey('ec-p256');
  caDer = await createCaCertificate({
    trustDomain: td,
    key,
    notBeforeMs: clock.nowMs() - HOUR,
    notAfterMs: clock.nowMs() + 24 * HOUR,
  });
  signer = new SvidSigner({ trustDomain: td, clock, defaultX509SvidTtlMs: HOUR, defaultJwtSvidTtlMs: HOUR });
  signer.use({
    x509: {
      id: 'x',
      notAfterMs: clock.nowMs() + 24 * HOUR,
      issuer: prepareIssuer(caDer, key),
      chainTail: [],
    },
    jwt: { kid: 'j', notAfterMs: clock.nowMs() + 24 * HOUR, key: generateKey('ec-p256') },
  });
});
afterAll(() => tmp.cleanup());

describe('workload signing surface', () => {
  it.each(['/sigil/server', '/sigil', '/sigil/agent/join_token/abc', '/sigil/anything/else'])(
    'refuses %s on every method',
    (reserved) => {
      const attempts = [
        () => signer.signX509Svid({ spiffeId: id(reserved), publicKey: generateKey('ec-p256') }),
        () => signer.signCsr({ spiffeId: id(reserved), csr: csrAskingForTheMarker() }),
        () => signer.mintJwtSvid({ spiffeId: id(reserved), audience: ['a'] }),
      ];
      for (const attempt of attempts) {
        let err: unknown;
        try {
          attempt();
        } catch (e) {
          err = e;
        }
        expect(isSigilError(err, 'ERR_SPIFFE_ID_RESERVED'), String(err)).toBe(true);
        expect((err as Error).message).toContain("is reserved for Sigil's server and agents");
      }
    },
  );

  it('still signs IDs that merely start with the same letters', () => {
    const issued = signer.signX509Svid({ spiffeId: id('/sigilx/web'), publicKey: generateKey('ec-p256') });
    expect(describeCertificate(issued.chain[0]!).spiffeId).toBe('spiffe://example.org/sigilx/web');
  });

  it('never copies extensions from a CSR: a CSR asking for the marker gets a plain workload SVID', () => {
    const issued = signer.signCsr({ spiffeId: id('/web'), csr: csrAskingForTheMarker() });
    const text = openssl('x509', '-noout', '-text', '-in', writePem('plain.pem', issued.chain[0]!));
    expect(text.status, text.out).toBe(0);
    expect(text.out).toContain('URI:spiffe://example.org/web');
    expect(text.out).not.toContain(SIGIL_SERVER_MARKER_OID);
    expect(text.out).not.toContain('sigil/server');
  });
});

describe("Sigil's own SVIDs", () => {
  it('marks the server SVID, non-critically, and it verifies with openssl and our verifier', () => {
    const issued = signer.signServerSvid({ publicKey: generateKey('ec-p256'), ttlMs: HOUR });
    const leaf = issued.chain[0]!;
    expect(serverCertificateProblem(leaf, td)).toBeUndefined();
    const text = openssl('x509', '-noout', '-text', '-in', writePem('server.pem', leaf));
    expect(text.out).toContain(`${SIGIL_SERVER_MARKER_OID}:`);
    expect(text.out).not.toContain(`${SIGIL_SERVER_MARKER_OID}: critical`);
    expect(text.out).toContain('URI:spiffe://example.org/sigil/server');
    const verified = openssl('verify', '-CAfile', writePem('ca.pem', caDer), writePem('leaf.pem', leaf));
    expect(verified.out).toContain('leaf.pem: OK');
    expect(verifyX509Svid([leaf], () => [caDer], clock.nowMs()).spiffeId.toString()).toBe(
      'spiffe://example.org/sigil/server',
    );
  });

  it('signs agent SVIDs only for agent IDs, and without the marker', () => {
    const agent = signer.signAgentSvid({
      csr: parseCsr(csrAskingForTheMarker()),
      agentId: id('/sigil/agent/x'),
      ttlMs: HOUR,
    });
    expect(describeCertificate(agent.chain[0]!).spiffeId).toBe('spiffe://example.org/sigil/agent/x');
    expect(serverCertificateProblem(agent.chain[0]!, td)).toMatch(/URI SANs/);
    for (const notAgent of ['/sigil/server', '/web', '/sigil/agentx']) {
      expect(() =>
        signer.signAgentSvid({ csr: parseCsr(csrAskingForTheMarker()), agentId: id(notAgent), ttlMs: HOUR }),
      ).toThrow(/is not an agent ID/);
    }
  });
});
