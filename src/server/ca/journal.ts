// The CA journal: which signing authorities exist and in which state, stored in the datastore so
// that every server restart (or a second server on a shared PostgreSQL store) resumes the same CA.
// Key material stays on disk (0600); the journal holds only public parts and the key file name.
import { SigilError } from '../../spiffe/errors.js';

export type AuthorityState = 'prepared' | 'active' | 'old';

export interface X509AuthorityRecord {
  readonly id: string;
  readonly state: AuthorityState;
  /** Our signing CA certificate, PEM. */
  readonly certPem: string;
  /** Certificates between our CA and the published root (upstream intermediates), PEM; "" when none. */
  readonly upstreamChainPem: string;
  /** File name under the keys directory. */
  readonly keyFile: string;
  readonly notAfterMs: number;
  readonly createdAtMs: number;
}

export interface JwtAuthorityRecord {
  readonly kid: string;
  readonly state: AuthorityState;
  readonly publicKeyPem: string;
  readonly keyFile: string;
  readonly notAfterMs: number;
  readonly createdAtMs: number;
}

export interface CaJournal {
  readonly x509: readonly X509AuthorityRecord[];
  readonly jwt: readonly JwtAuthorityRecord[];
}

export const EMPTY_JOURNAL: CaJournal = Object.freeze({ x509: [], jwt: [] });

export function parseJournal(data: string): CaJournal {
  try {
    const parsed = JSON.parse(data) as CaJournal;
    if (!Array.isArray(parsed.x509) || !Array.isArray(parsed.jwt)) throw new Error('missing x509/jwt lists');
    return parsed;
  } catch (err) {
    throw new SigilError(
      'ERR_DATASTORE',
      `the CA journal in the datastore is unreadable: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

export function activeX509(journal: CaJournal): X509AuthorityRecord | undefined {
  return journal.x509.find((a) => a.state === 'active');
}

export function activeJwt(journal: CaJournal): JwtAuthorityRecord | undefined {
  return journal.jwt.find((a) => a.state === 'active');
}
