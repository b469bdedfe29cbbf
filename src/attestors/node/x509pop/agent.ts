// x509pop, agent half: sends the node certificate chain and signs the server's nonce with the node key.
// The files are read once, at create time, and the key is checked against the certificate there, so a
// mismatched pair fails at startup rather than at every attestation. Restart the agent after the node
// certificate is renewed on disk.
import type { KeyObject } from 'node:crypto';
import { SigilError } from '../../../spiffe/errors.js';
import { parsePrivateKey } from '../../../spiffe/keys.js';
import { decodePemBlocks } from '../../../spiffe/pem.js';
import { certificateMatchesKey } from '../../../spiffe/x509-authority.js';
import { ConfigCheck, type ReadTextFile } from '../config-check.js';
import type { NodeAttestorAgent } from '../types.js';
import {
  decodeChallenge,
  encodePayload,
  MAX_CHAIN_CERTIFICATES,
  type SignatureScheme,
  signatureSchemeFor,
  signChallenge,
  X509POP_ATTESTOR,
} from './protocol.js';

/**
 * Config: `certificate_path` (PEM: the node certificate first, then any intermediates),
 * `private_key_path` (PEM: PKCS#8, SEC1 or PKCS#1; EC P-256, EC P-384 or RSA >= 2048 bits) and
 * optionally `intermediates_path` (PEM: more intermediates, appended after those in certificate_path).
 */
export function createX509PopAgent(
  rawConfig: unknown,
  field = `node_attestors.${X509POP_ATTESTOR}`,
  readTextFile?: ReadTextFile,
): NodeAttestorAgent {
  const check = new ConfigCheck(field, readTextFile);
  const raw =
    check.mapping(field, rawConfig, ['certificate_path', 'private_key_path', 'intermediates_path']) ?? {};
  const certPath = check.path('certificate_path');
  const keyPath = check.path('private_key_path');
  const intermediatesPath = check.path('intermediates_path');
  const certFile = check.string(certPath, raw.certificate_path, true);
  const keyFile = check.string(keyPath, raw.private_key_path, true);
  const intermediatesFile = check.string(intermediatesPath, raw.intermediates_path, false);

  const certs = readCertificates(check, certPath, certFile);
  const intermediates = readCertificates(check, intermediatesPath, intermediatesFile);
  const keyPem = check.readFile(keyPath, keyFile);
  let key: KeyObject | undefined;
  if (keyPem !== undefined) {
    try {
      key = parsePrivateKey(keyPem, keyFile);
    } catch (err) {
      check.problem(keyPath, (err as Error).message);
    }
  }
  const chain = [...certs, ...intermediates];
  if (chain.length > MAX_CHAIN_CERTIFICATES) {
    check.problem(certPath, `the chain has ${chain.length} certificates (at most ${MAX_CHAIN_CERTIFICATES})`);
  }
  if (key !== undefined && certs.length > 0) {
    try {
      if (!certificateMatchesKey(certs[0]!, key)) {
        check.problem(
          keyPath,
          `the key in ${keyFile} is not the key of the first certificate in ${certFile}`,
        );
      }
    } catch (err) {
      check.problem(certPath, `${certFile}: first certificate is not readable: ${(err as Error).message}`);
    }
  }
  check.finish();
  return new X509PopAgent(Object.freeze(chain), key!, signatureSchemeFor(key!));
}

function readCertificates(check: ConfigCheck, path: string, file: string | undefined): Buffer[] {
  const pem = check.readFile(path, file);
  if (pem === undefined) return [];
  try {
    return decodePemBlocks(pem, 'CERTIFICATE', file);
  } catch (err) {
    check.problem(path, (err as Error).message);
    return [];
  }
}

class X509PopAgent implements NodeAttestorAgent {
  readonly name = X509POP_ATTESTOR;

  constructor(
    private readonly chain: readonly Buffer[],
    private readonly key: KeyObject,
    private readonly scheme: SignatureScheme,
  ) {}

  async payload(): Promise<Buffer> {
    return encodePayload(this.chain);
  }

  async respond(challengeBytes: Buffer): Promise<Buffer> {
    const challenge = decodeChallenge(challengeBytes);
    // The scheme follows from our key; a server asking for another is confused or probing.
    if (challenge.scheme !== this.scheme) {
      throw new SigilError(
        'ERR_INPUT_INVALID',
        `x509pop: the server asked for scheme "${challenge.scheme}" but the node key signs with "${this.scheme}"`,
        { reason: 'scheme' },
      );
    }
    return signChallenge(this.key, challenge);
  }
}
