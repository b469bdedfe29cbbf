// NodeStore on SQLite: one attested_nodes row per agent plus its selectors in node_selectors.
// An upsert replaces the row and its selectors in one transaction, so a reader never sees a node
// with half of its new selectors.
import type { Database } from 'better-sqlite3';
import { quote, SigilError } from '../../../spiffe/errors.js';
import { canonicalSelectors, type Selector } from '../../../spiffe/selector.js';
import { prepareSelectorList } from '../entry-input.js';
import { resolvePage, toPage } from '../page.js';
import type { AttestedNode, NodeStore } from '../types.js';
import { withSqliteErrors } from './dialect.js';

interface NodeRow {
  spiffe_id: string;
  attestation_type: string;
  cert_serial: string;
  cert_not_after_ms: number;
  x509_authority_id: string | null;
  banned: number;
  can_reattest: number;
  created_at_ms: number;
  updated_at_ms: number;
}

/** Node operations to run inside a caller's transaction. */
export interface SqliteNodeOps {
  /** True when the node is stored and banned; false for an unknown one. */
  isBanned(spiffeId: string): boolean;
  upsert(node: AttestedNode): AttestedNode;
}

export function sqliteNodeStore(db: Database): { store: NodeStore; ops: SqliteNodeOps } {
  const stmt = {
    select: db.prepare('SELECT * FROM attested_nodes WHERE spiffe_id = ?'),
    banned: db.prepare('SELECT banned FROM attested_nodes WHERE spiffe_id = ?'),
    selectors: db.prepare('SELECT type, value FROM node_selectors WHERE node_id = ?'),
    upsert:
      db.prepare(`INSERT INTO attested_nodes (spiffe_id, attestation_type, cert_serial, cert_not_after_ms,
      x509_authority_id, banned, can_reattest, created_at_ms, updated_at_ms)
      VALUES (@spiffe_id, @attestation_type, @cert_serial, @cert_not_after_ms, @x509_authority_id,
      @banned, @can_reattest, @created_at_ms, @updated_at_ms)
      ON CONFLICT (spiffe_id) DO UPDATE SET attestation_type = excluded.attestation_type,
      cert_serial = excluded.cert_serial, cert_not_after_ms = excluded.cert_not_after_ms,
      x509_authority_id = excluded.x509_authority_id, banned = excluded.banned, can_reattest = excluded.can_reattest,
      created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms`),
    deleteSelectors: db.prepare('DELETE FROM node_selectors WHERE node_id = ?'),
    insertSelector: db.prepare('INSERT INTO node_selectors (node_id, type, value) VALUES (?, ?, ?)'),
    list: db.prepare('SELECT * FROM attested_nodes WHERE spiffe_id > ? ORDER BY spiffe_id LIMIT ?'),
    delete: db.prepare('DELETE FROM attested_nodes WHERE spiffe_id = ?'),
    ban: db.prepare(
      `UPDATE attested_nodes SET cert_serial = '', banned = 1, updated_at_ms = ? WHERE spiffe_id = ?`,
    ),
  };

  const toNode = (row: NodeRow): AttestedNode =>
    Object.freeze({
      spiffeId: row.spiffe_id,
      attestationType: row.attestation_type,
      certSerial: row.cert_serial,
      certNotAfterMs: row.cert_not_after_ms,
      ...(row.x509_authority_id !== null ? { x509AuthorityId: row.x509_authority_id } : {}),
      // Sorted in JS: SQLite's byte order differs from canonicalSelectors' "type:value" string order.
      selectors: Object.freeze(
        canonicalSelectors(stmt.selectors.all(row.spiffe_id) as Selector[]).map((s) => Object.freeze(s)),
      ),
      banned: row.banned === 1,
      canReattest: row.can_reattest === 1,
      createdAtMs: row.created_at_ms,
      updatedAtMs: row.updated_at_ms,
    });

  const selectNode = (spiffeId: string): AttestedNode => {
    const row = stmt.select.get(spiffeId) as NodeRow | undefined;
    if (row === undefined) {
      throw new SigilError('ERR_NODE_NOT_FOUND', `node ${quote(spiffeId)} not found`, {
        field: 'spiffe_id',
        reason: 'node',
      });
    }
    return toNode(row);
  };

  const upsertTx = db.transaction((node: AttestedNode, selectors: readonly Selector[]) => {
    stmt.upsert.run({
      spiffe_id: node.spiffeId,
      attestation_type: node.attestationType,
      cert_serial: node.certSerial,
      cert_not_after_ms: node.certNotAfterMs,
      x509_authority_id: node.x509AuthorityId ?? null,
      banned: node.banned ? 1 : 0,
      can_reattest: node.canReattest ? 1 : 0,
      created_at_ms: node.createdAtMs,
      updated_at_ms: node.updatedAtMs,
    });
    stmt.deleteSelectors.run(node.spiffeId);
    for (const s of selectors) stmt.insertSelector.run(node.spiffeId, s.type, s.value);
    return selectNode(node.spiffeId);
  });

  const deleteTx = db.transaction((spiffeId: string) => {
    const node = selectNode(spiffeId);
    stmt.delete.run(spiffeId);
    return node;
  });

  const banTx = db.transaction((spiffeId: string, nowMs: number) => {
    selectNode(spiffeId);
    stmt.ban.run(nowMs, spiffeId);
    return selectNode(spiffeId);
  });

  // A node may legitimately have no selectors (e.g. a join token attests none).
  const upsert = (node: AttestedNode) => upsertTx(node, prepareSelectorList(node.selectors, 'selectors'));

  const store: NodeStore = {
    async upsertNode(node) {
      const selectors = prepareSelectorList(node.selectors, 'selectors');
      return withSqliteErrors({ action: `upsert node ${quote(node.spiffeId)}` }, () =>
        upsertTx.immediate(node, selectors),
      );
    },

    async fetchNode(spiffeId) {
      return withSqliteErrors({ action: `fetch node ${quote(spiffeId)}` }, () => selectNode(spiffeId));
    },

    async listNodes(page) {
      const request = resolvePage(page);
      return withSqliteErrors({ action: 'list nodes' }, () => {
        // Read the page and its selectors in one transaction, so they come from one snapshot.
        const rows = db.transaction(() =>
          (stmt.list.all(request.after ?? '', request.size + 1) as NodeRow[]).map(toNode),
        )();
        return toPage(rows, request, (n) => n.spiffeId);
      });
    },

    async deleteNode(spiffeId) {
      return withSqliteErrors({ action: `delete node ${quote(spiffeId)}` }, () =>
        deleteTx.immediate(spiffeId),
      );
    },

    async banNode(spiffeId, nowMs) {
      return withSqliteErrors({ action: `ban node ${quote(spiffeId)}` }, () =>
        banTx.immediate(spiffeId, nowMs),
      );
    },
  };
  const ops: SqliteNodeOps = {
    isBanned: (spiffeId) => (stmt.banned.get(spiffeId) as Pick<NodeRow, 'banned'> | undefined)?.banned === 1,
    upsert,
  };
  return { store, ops };
}
