import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SigilError } from '../../../spiffe/errors.js';
import { parseTrustDomain } from '../../../spiffe/id.js';
import { parsePrivateKey } from '../../../spiffe/keys.js';
import { formatSelector } from '../../../spiffe/selector.js';
import type { NodeAttestation, NodeAttestContext, NodeAttestorAgent, NodeAttestorServer } from '../types.js';
import { createX509PopAgent } from './agent.js';
import { decodeChallenge, encodeChallenge, signChallenge } from './protocol.js';
import { createX509PopServer } from './server.js';

const DAY_MS = 86_400_000;

// Certificates are made by openssl, not by our code, so the verifier is checked against an independent encoder.
const EXTENSIONS = `
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectAltName = DNS:node-1.example.org, DNS:node-1
[leaf_no_akid]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
authorityKeyIdentifier = none
[leaf_no_ds]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyAgreement
[not_ca]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyCertSign
`;

let dir: string;
const file = (name: string) => path.join(dir, name);

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function key(name: string, kind: 'P-256' | 'P-384' | 'RSA'): void {
  const opts =
    kind === 'RSA'
      ? ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']
      : ['-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${kind}`];
  openssl('genpkey', ...opts, '-out', `${name}.key`);
}

/** Issues `<name>.pem` for `<name>.key`, signed by `issuer` (itself when self-signed). */
function cert(
  name: string,
  cn: string,
  section: string,
  issuer: string | null,
  days: number,
  serial: string,
): void {
  openssl('req', '-new', '-key', `${name}.key`, '-subj', `/O=Sigil Test/CN=${cn}`, '-out', `${name}.csr`);
  const signer =
    issuer === null ? ['-signkey', `${name}.key`] : ['-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`];
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    ...signer,
    '-days',
    String(days),
    '-set_serial',
    serial,
    '-extfile',
    'ext.cnf',
    '-extensions',
    section,
    '-sha256',
    '-out',
    `${name}.pem`,
  );
}

function sha1Fingerprint(name: string): string {
  const out = openssl('x509', '-in', `${name}.pem`, '-noout', '-fingerprint', '-sha1');
  return out.trim().split('=')[1]!.replaceAll(':', '').toLowerCase();
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-x509pop-'));
  writeFileSync(file('ext.cnf'), EXTENSIONS);
  key('root', 'P-256');
  cert('root', 'Node Root CA', 'ca', null, 3650, '0x01');
  key('foreign', 'P-256');
  cert('foreign', 'Foreign Root CA', 'ca', null, 3650, '0x02');
  key('inter', 'P-384');
  cert('inter', 'Node Intermediate CA', 'intermediate', 'root', 3650, '0x03');
  key('p256', 'P-256');
  cert('p256', 'node-p256', 'leaf', 'root', 30, '0x1a2b3c');
  key('p384', 'P-384');
  cert('p384', 'node-p384', 'leaf', 'inter', 30, '0x04');
  key('rsa', 'RSA');
  cert('rsa', 'node-rsa', 'leaf', 'root', 30, '0x05');
  key('short', 'P-256');
  cert('short', 'node-short', 'leaf', 'root', 1, '0x06');
  key('alien', 'P-256');
  cert('alien', 'node-alien', 'leaf', 'foreign', 30, '0x07');
  key('nods', 'P-256');
  cert('nods', 'node-nods', 'leaf_no_ds', 'root', 30, '0x08');
  key('notca', 'P-256');
  cert('notca', 'Not A CA', 'not_ca', 'root', 30, '0x09');
  key('under', 'P-256');
  cert('under', 'node-under', 'leaf', 'notca', 30, '0x0a');
  key('impostor', 'P-256');
  cert('impostor', 'Node Root CA', 'ca', null, 3650, '0x0b');
  key('forged', 'P-256');
  // No authorityKeyIdentifier, so only the signature tells the impostor from the real root.
  cert('forged', 'node-forged', 'leaf_no_akid', 'impostor', 30, '0x0c');
  writeFileSync(file('bundle.pem'), readFileSync(file('root.pem')));
}, 60_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function server(): NodeAttestorServer {
  return createX509PopServer({ ca_bundle_path: file('bundle.pem') });
}

function agent(name: string, intermediates?: string): NodeAttestorAgent {
  return createX509PopAgent({
    certificate_path: file(`${name}.pem`),
    private_key_path: file(`${name}.key`),
    ...(intermediates === undefined ? {} : { intermediates_path: file(`${intermediates}.pem`) }),
  });
}

/** Wires a server half to an agent half the way the agent API does: payload, then challenges. */
async function converse(
  srv: NodeAttestorServer,
  payload: Buffer,
  respond: (challenge: Buffer) => Promise<Buffer>,
  nowMs = Date.now(),
): Promise<NodeAttestation> {
  const context: NodeAttestContext = {
    trustDomain: parseTrustDomain('example.org'),
    nowMs,
    signal: new AbortController().signal,
    challenge: respond,
  };
  return srv.attest(payload, context);
}

async function attestWith(a: NodeAttestorAgent, nowMs?: number): Promise<NodeAttestation> {
  return converse(server(), await a.payload(), (c) => a.respond(c), nowMs);
}

async function refusal(promise: Promise<unknown>): Promise<SigilError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SigilError);
  expect((err as SigilError).code).toBe('ERR_PERMISSION_DENIED');
  return err as SigilError;
}

describe('x509pop attestation', () => {
  it('attests an EC P-256 node certificate issued by the root, with exact selectors', async () => {
    const attestation = await attestWith(agent('p256'));
    expect(attestation.agentPath).toBe(`/sigil/agent/x509pop/${sha1Fingerprint('p256')}`);
    expect(attestation.canReattest).toBe(true);
    expect(attestation.aliases).toEqual([]);
    expect(attestation.selectors.map(formatSelector)).toEqual([
      'x509pop:subject:cn:node-p256',
      `x509pop:ca:fingerprint:${sha1Fingerprint('root')}`,
      'x509pop:san:dns:node-1.example.org',
      'x509pop:san:dns:node-1',
      'x509pop:serialnumber:1a2b3c',
    ]);
  });

  it('attests an EC P-384 leaf through an intermediate, fingerprinting every CA on the path', async () => {
    const attestation = await attestWith(agent('p384', 'inter'));
    expect(attestation.agentPath).toBe(`/sigil/agent/x509pop/${sha1Fingerprint('p384')}`);
    expect(attestation.selectors.map(formatSelector)).toEqual([
      'x509pop:subject:cn:node-p384',
      `x509pop:ca:fingerprint:${sha1Fingerprint('inter')}`,
      `x509pop:ca:fingerprint:${sha1Fingerprint('root')}`,
      'x509pop:san:dns:node-1.example.org',
      'x509pop:san:dns:node-1',
      'x509pop:serialnumber:04',
    ]);
  });

  it('accepts the intermediate inside certificate_path too', async () => {
    writeFileSync(
      file('p384-chain.pem'),
      readFileSync(file('p384.pem'), 'utf8') + readFileSync(file('inter.pem'), 'utf8'),
    );
    const a = createX509PopAgent({
      certificate_path: file('p384-chain.pem'),
      private_key_path: file('p384.key'),
    });
    expect((await attestWith(a)).agentPath).toBe(`/sigil/agent/x509pop/${sha1Fingerprint('p384')}`);
  });

  it('attests an RSA-2048 leaf (RSA-PSS challenge)', async () => {
    const a = agent('rsa');
    let scheme = '';
    const attestation = await converse(server(), await a.payload(), async (c) => {
      scheme = decodeChallenge(c).scheme;
      return a.respond(c);
    });
    expect(scheme).toBe('rsa-pss-sha256');
    expect(attestation.agentPath).toBe(`/sigil/agent/x509pop/${sha1Fingerprint('rsa')}`);
  });

  it('sends a fresh 32-byte nonce each time', async () => {
    const a = agent('p256');
    const nonces: string[] = [];
    for (let i = 0; i < 2; i++) {
      await converse(server(), await a.payload(), async (c) => {
        nonces.push(decodeChallenge(c).nonce.toString('hex'));
        return a.respond(c);
      });
    }
    expect(nonces[0]).toHaveLength(64);
    expect(nonces[0]).not.toBe(nonces[1]);
  });

  it('refuses a signature made with another key', async () => {
    const wrongKey = parsePrivateKey(readFileSync(file('short.key'), 'utf8'));
    const payload = await agent('p256').payload();
    const err = await refusal(
      converse(server(), payload, async (c) => signChallenge(wrongKey, decodeChallenge(c))),
    );
    expect(err.message).toBe('x509pop: challenge signature is invalid');
  });

  it('refuses a tampered signature', async () => {
    const a = agent('p256');
    const err = await refusal(
      converse(server(), await a.payload(), async (c) => {
        const signature = Buffer.from(await a.respond(c));
        signature[signature.length - 3]! ^= 0x01;
        return signature;
      }),
    );
    expect(err.message).toBe('x509pop: challenge signature is invalid');
  });

  it('refuses a signature over the bare nonce (no signing context)', async () => {
    const { sign } = await import('node:crypto');
    const keyObject = parsePrivateKey(readFileSync(file('p256.key'), 'utf8'));
    const err = await refusal(
      converse(server(), await agent('p256').payload(), async (c) =>
        sign('sha256', decodeChallenge(c).nonce, keyObject),
      ),
    );
    expect(err.message).toBe('x509pop: challenge signature is invalid');
  });

  it('refuses an expired certificate without sending a challenge', async () => {
    let challenged = false;
    const a = agent('short');
    const err = await refusal(
      converse(
        server(),
        await a.payload(),
        async (c) => {
          challenged = true;
          return a.respond(c);
        },
        Date.now() + 3 * DAY_MS,
      ),
    );
    expect(err.message).toMatch(
      /^x509pop: certificate chain does not verify against the configured CA bundle: leaf "O=Sigil Test, CN=node-short" expired at /,
    );
    expect(challenged).toBe(false);
  });

  it('refuses a certificate that is not valid yet', async () => {
    const err = await refusal(attestWith(agent('p256'), Date.now() - DAY_MS));
    expect(err.message).toContain('is not valid until');
  });

  it('refuses a certificate from a foreign CA', async () => {
    const err = await refusal(attestWith(agent('alien')));
    expect(err.message).toBe(
      'x509pop: certificate chain does not verify against the configured CA bundle: no configured root or supplied ' +
        'intermediate signed the leaf "O=Sigil Test, CN=node-alien" (its issuer is "O=Sigil Test, CN=Foreign Root CA")',
    );
  });

  it('refuses a leaf whose intermediate was not supplied', async () => {
    const err = await refusal(attestWith(agent('p384')));
    expect(err.message).toContain(
      'no configured root or supplied intermediate signed the leaf "O=Sigil Test, CN=node-p384"',
    );
  });

  it('refuses a chain through a certificate that is not a CA', async () => {
    const err = await refusal(attestWith(agent('under', 'notca')));
    expect(err.message).toBe(
      'x509pop: certificate chain does not verify against the configured CA bundle: intermediate ' +
        '"O=Sigil Test, CN=Not A CA" is not a CA (basicConstraints cA is not true)',
    );
  });

  it('refuses a leaf whose keyUsage lacks digitalSignature', async () => {
    const err = await refusal(attestWith(agent('nods')));
    expect(err.message).toBe(
      'x509pop: certificate chain does not verify against the configured CA bundle: leaf ' +
        '"O=Sigil Test, CN=node-nods" has a keyUsage without digitalSignature',
    );
  });

  it("refuses a leaf from an impostor CA that copies the root's name (signature check)", async () => {
    const err = await refusal(attestWith(agent('forged')));
    expect(err.message).toBe(
      'x509pop: certificate chain does not verify against the configured CA bundle: no configured root or supplied ' +
        'intermediate signed the leaf "O=Sigil Test, CN=node-forged" (its issuer is "O=Sigil Test, CN=Node Root CA")',
    );
  });

  it.each([
    ['not JSON', Buffer.from('nope'), /^x509pop: malformed payload: payload: invalid JSON/],
    ['no certificates', Buffer.from('{"certificates":[]}'), /must be a non-empty list/],
    ['an extra member', Buffer.from('{"certificates":["AA=="],"x":1}'), /member "x" is not allowed/],
    ['bad base64', Buffer.from('{"certificates":["%%%"]}'), /payload certificate 0 must be standard base64/],
    [
      'garbage DER',
      Buffer.from('{"certificates":["AAAA"]}'),
      /^x509pop: malformed payload: leaf is not a readable certificate$/,
    ],
    [
      'too many certificates',
      Buffer.from(JSON.stringify({ certificates: Array(9).fill('AAAA') })),
      /at most 8/,
    ],
  ])('refuses a malformed payload: %s', async (_, payload, message) => {
    const err = await refusal(converse(server(), payload, async () => Buffer.alloc(0)));
    expect(err.message).toMatch(message);
  });
});

describe('x509pop agent', () => {
  it('refuses a challenge for another scheme or with a short nonce', async () => {
    const a = agent('p256');
    const rsaChallenge = encodeChallenge({ nonce: Buffer.alloc(32, 1), scheme: 'rsa-pss-sha256' });
    await expect(a.respond(rsaChallenge)).rejects.toMatchObject({
      code: 'ERR_INPUT_INVALID',
      message:
        'x509pop: the server asked for scheme "rsa-pss-sha256" but the node key signs with "ecdsa-p256-sha256"',
    });
    const shortNonce = Buffer.from(JSON.stringify({ nonce: 'AAAA', scheme: 'ecdsa-p256-sha256' }));
    await expect(a.respond(shortNonce)).rejects.toMatchObject({
      message: 'x509pop: challenge nonce must be 32 bytes (got 3)',
    });
  });

  it('reports config problems by dotted path, all at once', () => {
    expect(() =>
      createX509PopAgent({ certificate_path: file('missing.pem'), private_key_path: 7, extra: true }),
    ).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: [
          'node_attestors.x509pop has 3 problems',
          '  node_attestors.x509pop.extra: unknown key (known keys: certificate_path, private_key_path, intermediates_path)',
          '  node_attestors.x509pop.private_key_path: must be a non-empty string (got 7)',
          `  node_attestors.x509pop.certificate_path: cannot read ${file('missing.pem')}: ENOENT`,
        ].join('\n'),
      }),
    );
  });

  it('refuses a key that does not belong to the certificate', () => {
    expect(() =>
      createX509PopAgent({ certificate_path: file('p256.pem'), private_key_path: file('rsa.key') }),
    ).toThrow(
      `node_attestors.x509pop.private_key_path: the key in ${file('rsa.key')} is not the key of the first certificate in ${file('p256.pem')}`,
    );
  });

  it('refuses files that hold the wrong PEM', () => {
    expect(() =>
      createX509PopAgent({ certificate_path: file('p256.key'), private_key_path: file('p256.pem') }),
    ).toThrow(
      /certificate_path: .*no "CERTIFICATE" PEM block found[\s\S]*private_key_path: .*not a readable private key/,
    );
  });
});

describe('x509pop server config', () => {
  it.each([
    [{}, 'node_attestors.x509pop.ca_bundle_path: is required'],
    [
      { ca_bundle_path: ['a'] },
      'node_attestors.x509pop.ca_bundle_path: must be a non-empty string (got ["a"])',
    ],
    [
      { ca_bundle_path: '/nonexistent/ca.pem' },
      'node_attestors.x509pop.ca_bundle_path: cannot read /nonexistent/ca.pem: ENOENT',
    ],
    [null, 'node_attestors.x509pop: must be a mapping (got null)'],
  ])('rejects %j', (raw, message) => {
    expect(() => createX509PopServer(raw)).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID', message }),
    );
  });

  it('rejects an unknown key under the field it was given', () => {
    expect(() =>
      createX509PopServer({ ca_bundle_path: file('bundle.pem'), agent_path_template: 'x' }, 'agent.x'),
    ).toThrow('agent.x.agent_path_template: unknown key (known keys: ca_bundle_path)');
  });

  it('rejects a bundle holding a certificate that is not a CA, or no certificate at all', () => {
    expect(() => createX509PopServer({ ca_bundle_path: file('p256.pem') })).toThrow(
      `node_attestors.x509pop.ca_bundle_path: ${file('p256.pem')}: certificate 0 (O=Sigil Test, CN=node-p256) is not a CA (basicConstraints cA is not true)`,
    );
    expect(() => createX509PopServer({ ca_bundle_path: file('p256.key') })).toThrow(
      `node_attestors.x509pop.ca_bundle_path: ${file('p256.key')}: no "CERTIFICATE" PEM block found`,
    );
  });

  it('reads the bundle at create time, not at attestation', async () => {
    writeFileSync(file('moving.pem'), readFileSync(file('root.pem')));
    const srv = createX509PopServer({ ca_bundle_path: file('moving.pem') });
    writeFileSync(file('moving.pem'), readFileSync(file('foreign.pem')));
    const a = agent('p256');
    await expect(converse(srv, await a.payload(), (c) => a.respond(c))).resolves.toMatchObject({
      canReattest: true,
    });
  });
});
