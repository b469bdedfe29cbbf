// The x509pop conversation, shared by both halves: the agent sends its chain, the server answers with
// a nonce and the signature scheme the leaf key implies, and the agent proves possession of the key by
// signing it. One scheme per key type, so neither side negotiates:
//   EC P-256  -> ECDSA with SHA-256 (DER signature)    EC P-384 -> ECDSA with SHA-384 (DER signature)
//   RSA       -> RSA-PSS with SHA-256, salt length = digest length (PSS has a security proof PKCS#1 v1.5 lacks)
// The agent signs a fixed context string followed by the nonce, never the bare nonce, so a server cannot
// turn the node key into a signing oracle for some other protocol's messages.
import { constants, type KeyObject, sign, verify } from 'node:crypto';
import { parseJsonStrict } from '../../../spiffe/bundle.js';
import { quote, SigilError } from '../../../spiffe/errors.js';
import { keyTypeOf } from '../../../spiffe/keys.js';

export const X509POP_ATTESTOR = 'x509pop';

/** Nonce size: 256 bits, so a recorded answer never matches a later challenge. */
export const NONCE_BYTES = 32;

/** Longest chain accepted (leaf included); real node chains have 2-4 certificates. */
export const MAX_CHAIN_CERTIFICATES = 8;

export const SIGNATURE_SCHEMES = ['ecdsa-p256-sha256', 'ecdsa-p384-sha384', 'rsa-pss-sha256'] as const;
export type SignatureScheme = (typeof SIGNATURE_SCHEMES)[number];

export interface Challenge {
  readonly nonce: Buffer;
  readonly scheme: SignatureScheme;
}

const SIGNING_CONTEXT = Buffer.from('sigil x509pop challenge v1\0', 'utf8');

/** The scheme a key signs with; ERR_KEY_INVALID for keys Sigil does not support (Ed25519, P-521, small RSA). */
export function signatureSchemeFor(key: KeyObject): SignatureScheme {
  switch (keyTypeOf(key)) {
    case 'ec-p256':
      return 'ecdsa-p256-sha256';
    case 'ec-p384':
      return 'ecdsa-p384-sha384';
    case 'rsa-2048':
      return 'rsa-pss-sha256';
  }
}

export function signChallenge(privateKey: KeyObject, challenge: Challenge): Buffer {
  const { hash, options } = schemeParams(challenge.scheme);
  return sign(hash, signedMessage(challenge.nonce), { key: privateKey, ...options });
}

export function isChallengeSignatureValid(
  publicKey: KeyObject,
  challenge: Challenge,
  signature: Buffer,
): boolean {
  const { hash, options } = schemeParams(challenge.scheme);
  try {
    return verify(hash, signedMessage(challenge.nonce), { key: publicKey, ...options }, signature);
  } catch {
    // OpenSSL throws on some malformed signatures instead of returning false: either way, not valid.
    return false;
  }
}

export function encodeChallenge(challenge: Challenge): Buffer {
  return Buffer.from(JSON.stringify({ nonce: challenge.nonce.toString('base64'), scheme: challenge.scheme }));
}

/** Reads a challenge from the server; ERR_INPUT_INVALID when it is not one. */
export function decodeChallenge(bytes: Buffer): Challenge {
  const fields = decodeJsonObject(bytes, 'challenge', ['nonce', 'scheme']);
  const nonce = decodeBase64(fields.nonce, 'challenge nonce');
  if (nonce.length !== NONCE_BYTES) {
    throw protocolError(`challenge nonce must be ${NONCE_BYTES} bytes (got ${nonce.length})`);
  }
  const scheme = fields.scheme;
  if (typeof scheme !== 'string' || !(SIGNATURE_SCHEMES as readonly string[]).includes(scheme)) {
    throw protocolError(`challenge scheme ${quote(scheme)} is not one of ${SIGNATURE_SCHEMES.join(', ')}`);
  }
  return { nonce, scheme: scheme as SignatureScheme };
}

/** The attestation payload: `{"certificates": [base64 DER leaf, intermediates…]}`. */
export function encodePayload(chain: readonly Buffer[]): Buffer {
  return Buffer.from(JSON.stringify({ certificates: chain.map((der) => der.toString('base64')) }));
}

/** Reads the payload into DER certificates, leaf first; ERR_INPUT_INVALID when malformed. */
export function decodePayload(bytes: Buffer): Buffer[] {
  const { certificates } = decodeJsonObject(bytes, 'payload', ['certificates']);
  if (!Array.isArray(certificates) || certificates.length === 0) {
    throw protocolError('payload "certificates" must be a non-empty list (leaf first)');
  }
  if (certificates.length > MAX_CHAIN_CERTIFICATES) {
    throw protocolError(
      `payload holds ${certificates.length} certificates (at most ${MAX_CHAIN_CERTIFICATES})`,
    );
  }
  return certificates.map((item, i) => decodeBase64(item, `payload certificate ${i}`));
}

function signedMessage(nonce: Buffer): Buffer {
  return Buffer.concat([SIGNING_CONTEXT, nonce]);
}

function schemeParams(scheme: SignatureScheme): {
  hash: 'sha256' | 'sha384';
  options: { dsaEncoding?: 'der'; padding?: number; saltLength?: number };
} {
  switch (scheme) {
    case 'ecdsa-p256-sha256':
      return { hash: 'sha256', options: { dsaEncoding: 'der' } };
    case 'ecdsa-p384-sha384':
      return { hash: 'sha384', options: { dsaEncoding: 'der' } };
    case 'rsa-pss-sha256':
      return {
        hash: 'sha256',
        options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
      };
  }
}

function decodeJsonObject(bytes: Buffer, what: string, members: readonly string[]): Record<string, unknown> {
  const value = parseJsonStrict(bytes.toString('utf8'), 'ERR_INPUT_INVALID', `x509pop: ${what}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw protocolError(`${what} must be a JSON object`);
  }
  for (const name of Object.keys(value)) {
    if (!members.includes(name)) {
      throw protocolError(`${what} member ${quote(name)} is not allowed (only ${members.join(', ')})`);
    }
  }
  return value as Record<string, unknown>;
}

function decodeBase64(value: unknown, what: string): Buffer {
  // Re-encoding must give the same text, so one value has exactly one accepted spelling.
  const bytes = typeof value === 'string' ? Buffer.from(value, 'base64') : undefined;
  if (bytes === undefined || value === '' || bytes.toString('base64') !== value) {
    throw protocolError(`${what} must be standard base64`);
  }
  return bytes;
}

function protocolError(rule: string): SigilError {
  return new SigilError('ERR_INPUT_INVALID', `x509pop: ${rule}`, { reason: 'protocol' });
}
