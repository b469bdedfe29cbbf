// Loads the signers a journal names as active: the key files from the keys directory, checked
// against the journaled certificate, so a journal never switches the CA to a key that is not its own.
import path from 'node:path';
import { SigilError } from '../../spiffe/errors.js';
import { decodePemBlocks } from '../../spiffe/pem.js';
import { readPrivateKeyFile } from '../../spiffe/secret-file.js';
import { certificateMatchesKey } from '../../spiffe/x509-authority.js';
import { prepareIssuer } from '../../spiffe/x509-svid.js';
import { type CaJournal, inState, type X509AuthorityRecord } from './journal.js';
import type { ActiveSigners } from './svid-signer.js';
import type { UpstreamAuthority } from './upstream.js';

export interface SignerLoaderOptions {
  readonly keysDir: string;
  readonly upstream: UpstreamAuthority | null;
}

export async function loadSigners(options: SignerLoaderOptions, journal: CaJournal): Promise<ActiveSigners> {
  const x509 = inState(journal.x509, 'active');
  const jwt = inState(journal.jwt, 'active');
  if (!x509 || !jwt) throw new SigilError('ERR_CA_UNAVAILABLE', 'the CA journal has no active authority');
  return {
    x509: await loadX509(options, x509),
    jwt: {
      kid: jwt.id,
      notAfterMs: jwt.notAfterMs,
      key: await readPrivateKeyFile(path.join(options.keysDir, jwt.keyFile)),
    },
  };
}

async function loadX509(
  options: SignerLoaderOptions,
  record: X509AuthorityRecord,
): Promise<ActiveSigners['x509']> {
  const certDer = decodePemBlocks(record.certPem, 'CERTIFICATE', 'ca journal')[0]!;
  const key = await readPrivateKeyFile(path.join(options.keysDir, record.keyFile));
  if (!certificateMatchesKey(certDer, key)) {
    throw new SigilError(
      'ERR_CA_UNAVAILABLE',
      `key file ${record.keyFile} does not match CA ${record.id}; restore the keys directory of this data dir`,
    );
  }
  const upstreamChain = record.upstreamChainPem
    ? decodePemBlocks(record.upstreamChainPem, 'CERTIFICATE', 'ca journal')
    : [];
  const chainTail = options.upstream || upstreamChain.length > 0 ? [certDer, ...upstreamChain] : [];
  return { id: record.id, notAfterMs: record.notAfterMs, issuer: prepareIssuer(certDer, key), chainTail };
}
