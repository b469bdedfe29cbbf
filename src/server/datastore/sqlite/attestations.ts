// AttestationStore on SQLite: one IMMEDIATE transaction spends the join token, checks the node is not
// banned, writes the node record and creates the alias entries. Any failure rolls all of it back, so
// a refused attestation leaves the token usable and no trace in the store.
import type { Database } from 'better-sqlite3';
import { isSigilError, quote, SigilError } from '../../../spiffe/errors.js';
import type { AttestationCommit, AttestationStore, RegistrationEntry } from '../types.js';
import { withSqliteErrors } from './dialect.js';
import type { SqliteEntryOps } from './entries.js';
import type { SqliteNodeOps } from './nodes.js';
import type { SqliteTokenOps } from './tokens.js';

export function sqliteAttestationStore(
  db: Database,
  ops: { readonly entries: SqliteEntryOps; readonly nodes: SqliteNodeOps; readonly tokens: SqliteTokenOps },
): AttestationStore {
  const commitTx = db.transaction((commit: AttestationCommit) => {
    if (commit.joinToken !== undefined) ops.tokens.spend(commit.joinToken, commit.nowMs);
    if (ops.nodes.isBanned(commit.node.spiffeId)) {
      throw new SigilError('ERR_PERMISSION_DENIED', `agent ${commit.node.spiffeId} is banned`, {
        reason: 'banned',
      });
    }
    const node = ops.nodes.upsert(commit.node);
    const createdEntries: RegistrationEntry[] = [];
    for (const entry of commit.aliasEntries) {
      try {
        createdEntries.push(ops.entries.create(entry));
      } catch (err) {
        // Already there from an earlier attestation of the same agent: nothing to add.
        if (!isSigilError(err, 'ERR_ENTRY_DUPLICATE')) throw err;
      }
    }
    return { node, createdEntries };
  });

  return {
    async commitAttestation(commit) {
      return withSqliteErrors({ action: `commit attestation of ${quote(commit.node.spiffeId)}` }, () =>
        commitTx.immediate(commit),
      );
    },
  };
}
