// An upstream authority from disk: the PEM certificate and key of an existing CA. Our signing CA is
// then an intermediate under it and the published bundle holds the upstream's root(s). The files are
// checked at start and read again each time a CA is prepared, so an upstream certificate renewed
// on disk is picked up, and one that cannot be read then (an unmounted secret volume) fails only
// that rotation step, which the CA retries with backoff.

import type { KeyObject } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SigilError } from '../../spiffe/errors.js';
import { parsePrivateKey } from '../../spiffe/keys.js';
import { decodePemBlocks } from '../../spiffe/pem.js';
import { certificateMatchesKey, parseCaCertificate } from '../../spiffe/x509-authority.js';
import type { UpstreamAuthorityConfig } from '../config.js';

/** What signs our CA certificate. */
export interface UpstreamIssuer {
  /** The upstream signing certificate, first of `chain`. */
  readonly certDer: Buffer;
  readonly key: KeyObject;
  /** The upstream certificate and any intermediates above it, excluding the roots. */
  readonly chain: readonly Buffer[];
}

export interface UpstreamAuthority {
  /** Roots to publish in the bundle. */
  readonly roots: readonly Buffer[];
  /** The current issuer; rejects (ERR_UPSTREAM_INVALID) when it cannot be reached or read. */
  issuer(): Promise<UpstreamIssuer>;
}

export function loadUpstreamAuthority(config: UpstreamAuthorityConfig): UpstreamAuthority {
  const { roots } = readUpstream(config);
  return { roots, issuer: async () => readUpstream(config).issuer };
}

function readUpstream(config: UpstreamAuthorityConfig): { roots: Buffer[]; issuer: UpstreamIssuer } {
  const certs = decodePemBlocks(readText(config.certFile), 'CERTIFICATE', config.certFile);
  const key = parsePrivateKey(readText(config.keyFile), config.keyFile);
  const signing = certs[0]!;
  parseCaCertificate(signing);
  if (!certificateMatchesKey(signing, key)) {
    throw new SigilError(
      'ERR_UPSTREAM_INVALID',
      `upstream key ${config.keyFile} does not belong to the first certificate in ${config.certFile}`,
    );
  }
  const roots = config.bundleFile
    ? decodePemBlocks(readText(config.bundleFile), 'CERTIFICATE', config.bundleFile)
    : certs.filter(isSelfSigned);
  if (roots.length === 0) {
    throw new SigilError(
      'ERR_UPSTREAM_INVALID',
      `${config.certFile} holds no self-signed root; set ca.upstream.bundle_file to the upstream root certificates`,
    );
  }
  const rootSet = new Set(roots.map((r) => r.toString('base64')));
  return {
    roots,
    issuer: { certDer: signing, key, chain: certs.filter((c) => !rootSet.has(c.toString('base64'))) },
  };
}

function isSelfSigned(der: Buffer): boolean {
  const cert = new X509Certificate(der);
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new SigilError('ERR_UPSTREAM_INVALID', `cannot read ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
