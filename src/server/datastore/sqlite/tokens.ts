// TokenStore on SQLite. Spending a token (inside commitAttestation's transaction) is a DELETE …
// RETURNING, so of two agents racing with the same token exactly one gets it. A token is usable
// strictly before its expiresAtMs.
import type { Database } from 'better-sqlite3';
import { SigilError } from '../../../spiffe/errors.js';
import type { JoinToken, TokenStore } from '../types.js';
import { withSqliteErrors } from './dialect.js';

interface TokenRow {
  token: string;
  expires_at_ms: number;
  spiffe_id: string | null;
  created_at_ms: number;
}

/** Token operations to run inside a caller's transaction; they throw, the caller's transaction rolls back. */
export interface SqliteTokenOps {
  /** Deletes and returns the token; ERR_TOKEN_NOT_FOUND or ERR_TOKEN_EXPIRED. */
  spend(token: string, nowMs: number): JoinToken;
}

export function sqliteTokenStore(db: Database): { store: TokenStore; ops: SqliteTokenOps } {
  const stmt = {
    insert: db.prepare(
      'INSERT INTO join_tokens (token, expires_at_ms, spiffe_id, created_at_ms) VALUES (?, ?, ?, ?)',
    ),
    spend: db.prepare('DELETE FROM join_tokens WHERE token = ? RETURNING *'),
    select: db.prepare('SELECT * FROM join_tokens WHERE token = ?'),
    list: db.prepare('SELECT * FROM join_tokens ORDER BY created_at_ms, token'),
    prune: db.prepare('DELETE FROM join_tokens WHERE expires_at_ms <= ?'),
  };

  const store: TokenStore = {
    async createJoinToken(token) {
      return withSqliteErrors(
        { action: 'create join token', subject: 'a join token with that value' },
        () => {
          stmt.insert.run(token.token, token.expiresAtMs, token.spiffeId, token.createdAtMs);
          return toToken({
            token: token.token,
            expires_at_ms: token.expiresAtMs,
            spiffe_id: token.spiffeId,
            created_at_ms: token.createdAtMs,
          });
        },
      );
    },

    async fetchJoinToken(token, nowMs) {
      const row = withSqliteErrors(
        { action: 'fetch join token' },
        () => stmt.select.get(token) as TokenRow | undefined,
      );
      return usableToken(row, nowMs);
    },

    async listJoinTokens() {
      return withSqliteErrors({ action: 'list join tokens' }, () =>
        (stmt.list.all() as TokenRow[]).map(toToken),
      );
    },

    async pruneJoinTokens(nowMs) {
      return withSqliteErrors({ action: 'prune join tokens' }, () => stmt.prune.run(nowMs).changes);
    },
  };
  const ops: SqliteTokenOps = {
    spend: (token, nowMs) => usableToken(stmt.spend.get(token) as TokenRow | undefined, nowMs),
  };
  return { store, ops };
}

function usableToken(row: TokenRow | undefined, nowMs: number): JoinToken {
  // Messages never echo the token: it is a secret until used.
  if (row === undefined) {
    throw new SigilError('ERR_TOKEN_NOT_FOUND', 'join token not found (unknown or already used)', {
      reason: 'join-token',
    });
  }
  if (row.expires_at_ms <= nowMs) {
    throw new SigilError(
      'ERR_TOKEN_EXPIRED',
      `join token expired at ${new Date(row.expires_at_ms).toISOString()}`,
      { reason: 'join-token' },
    );
  }
  return toToken(row);
}

function toToken(row: TokenRow): JoinToken {
  return Object.freeze({
    token: row.token,
    expiresAtMs: row.expires_at_ms,
    spiffeId: row.spiffe_id,
    createdAtMs: row.created_at_ms,
  });
}
