// Makes new signing authorities: a key (written 0600 before anything names it) and, for X.509, the
// CA certificate, self-signed or under the upstream authority. The result is a journal record in
// the `prepared` state; the CA decides when it signs.
import { createPublicKey, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { TrustDomain } from '../../spiffe/id.js';
import { generateKey, type KeyType } from '../../spiffe/keys.js';
import { encodePem } from '../../spiffe/pem.js';
import { writePrivateKeyFile } from '../../spiffe/secret-file.js';
import { createCaCertificate } from '../../spiffe/x509-authority.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import type { JwtAuthorityRecord, X509AuthorityRecord } from './journal.js';
import type { UpstreamAuthority } from './upstream.js';

/** Backdate 10s: a peer whose clock runs a little slow would reject a cert from "the future". */
export const BACKDATE_MS = 10_000;

export interface AuthorityFactoryOptions {
  readonly trustDomain: TrustDomain;
  readonly keyType: KeyType;
  readonly jwtKeyType: KeyType;
  readonly caTtlMs: number;
  readonly upstream: UpstreamAuthority | null;
  readonly keysDir: string;
}

export async function createX509Authority(
  options: AuthorityFactoryOptions,
  nowMs: number,
): Promise<X509AuthorityRecord> {
  const { keyType, caTtlMs, trustDomain, upstream, keysDir } = options;
  // The upstream first: when it cannot be reached, no key is made for nothing.
  const issuer = upstream ? await upstream.issuer() : null;
  const key = generateKey(keyType);
  const certDer = await createCaCertificate({
    trustDomain,
    key,
    signer: issuer ? { certDer: issuer.certDer, key: issuer.key } : undefined,
    notBeforeMs: nowMs - BACKDATE_MS,
    notAfterMs: nowMs + caTtlMs,
  });
  const described = describeCertificate(certDer);
  const id = described.subjectKeyIdHex ?? described.serialHex;
  const keyFile = `x509-ca-${id}.key`;
  // Key file before journal: the journal must never name a key that is not on disk.
  await writePrivateKeyFile(path.join(keysDir, keyFile), key);
  return {
    id,
    state: 'prepared',
    certPem: encodePem('CERTIFICATE', certDer),
    upstreamChainPem: (issuer?.chain ?? []).map((c) => encodePem('CERTIFICATE', c)).join(''),
    keyFile,
    createdAtMs: nowMs,
    notAfterMs: described.notAfterMs,
  };
}

export async function createJwtAuthority(
  options: AuthorityFactoryOptions,
  nowMs: number,
): Promise<JwtAuthorityRecord> {
  const key = generateKey(options.jwtKeyType);
  const id = randomBytes(24).toString('base64url');
  const keyFile = `jwt-${id}.key`;
  await writePrivateKeyFile(path.join(options.keysDir, keyFile), key);
  return {
    id,
    state: 'prepared',
    publicKeyPem: createPublicKey(key).export({ format: 'pem', type: 'spki' }) as string,
    keyFile,
    createdAtMs: nowMs,
    notAfterMs: nowMs + options.caTtlMs,
  };
}
