// The CA journal: which signing authorities exist and in which state, stored in the datastore so
// that every server restart (or a second server on a shared PostgreSQL store) resumes the same CA
// mid-rotation. Key material stays on disk (0600); the journal holds public parts and key file names.
import { SigilError } from '../../spiffe/errors.js';

export type AuthorityState = 'prepared' | 'active' | 'old';
export type AuthorityKind = 'x509' | 'jwt';

interface AuthorityRecordBase {
  /** X.509: the CA's subject key ID (hex); JWT: the key ID (kid). */
  readonly id: string;
  readonly state: AuthorityState;
  /** File name under the keys directory. */
  readonly keyFile: string;
  readonly createdAtMs: number;
  readonly notAfterMs: number;
  /** When it was first published in the bundle (journaled before the bundle is written). */
  readonly preparedAtMs?: number;
  readonly activatedAtMs?: number;
  /** The latest expiry of anything it signed, recorded when it stopped signing. */
  readonly lastSignedExpiresAtMs?: number;
  /** Operators taint a compromised old authority: agents then replace everything it signed. */
  readonly tainted?: boolean;
}

export interface X509AuthorityRecord extends AuthorityRecordBase {
  /** Our signing CA certificate, PEM. */
  readonly certPem: string;
  /** Certificates between our CA and the published root (upstream intermediates), PEM; "" when none. */
  readonly upstreamChainPem: string;
}

export interface JwtAuthorityRecord extends AuthorityRecordBase {
  readonly publicKeyPem: string;
}

export interface CaJournal {
  readonly x509: readonly X509AuthorityRecord[];
  readonly jwt: readonly JwtAuthorityRecord[];
}

export type AuthorityRecord = X509AuthorityRecord | JwtAuthorityRecord;

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

export function inState<T extends AuthorityRecord>(
  records: readonly T[],
  state: AuthorityState,
): T | undefined {
  return records.find((a) => a.state === state);
}
