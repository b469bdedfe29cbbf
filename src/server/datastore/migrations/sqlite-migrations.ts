// The SQLite schema, as an ordered list of migrations. Released migrations are never edited: a change
// is a new migration at the end. The SQL sticks to what PostgreSQL also accepts where that costs
// nothing (BIGINT, TEXT, REFERENCES … ON DELETE CASCADE); booleans are 0/1 INTEGERs because SQLite
// has no boolean type and better-sqlite3 cannot bind JS booleans.
import type { Migration } from './migration.js';

const INITIAL_SCHEMA = `
-- One row: the store-wide revision. Every entry write takes the next value, so agents and caches
-- can ask "what changed since revision N" and the order of writes is total.
CREATE TABLE store_revision (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  revision BIGINT NOT NULL
);
INSERT INTO store_revision (id, revision) VALUES (1, 0);

CREATE TABLE registered_entries (
  id TEXT PRIMARY KEY,
  spiffe_id TEXT NOT NULL,
  parent_id TEXT NOT NULL,
  -- Canonical selectors ("type:value" sorted, newline-joined; values cannot hold control characters),
  -- so the database itself rejects duplicates, even when two writers race.
  selectors_key TEXT NOT NULL,
  x509_svid_ttl_ms BIGINT NOT NULL,
  jwt_svid_ttl_ms BIGINT NOT NULL,
  dns_names TEXT NOT NULL,
  federates_with TEXT NOT NULL,
  admin INTEGER NOT NULL CHECK (admin IN (0, 1)),
  downstream INTEGER NOT NULL CHECK (downstream IN (0, 1)),
  hint TEXT NOT NULL,
  expires_at_ms BIGINT,
  revision BIGINT NOT NULL,
  created_at_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX registered_entries_identity ON registered_entries (spiffe_id, parent_id, selectors_key);
-- (column, id): a filtered listing walks the index already in page order, without a sort.
CREATE INDEX registered_entries_spiffe_id ON registered_entries (spiffe_id, id);
CREATE INDEX registered_entries_parent_id ON registered_entries (parent_id, id);
CREATE INDEX registered_entries_expires_at ON registered_entries (expires_at_ms);

-- The same selectors again, one row each, for the selector filters.
CREATE TABLE entry_selectors (
  entry_id TEXT NOT NULL REFERENCES registered_entries (id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (entry_id, type, value)
);
CREATE INDEX entry_selectors_type_value ON entry_selectors (type, value);

CREATE TABLE attested_nodes (
  spiffe_id TEXT PRIMARY KEY,
  attestation_type TEXT NOT NULL,
  cert_serial TEXT NOT NULL,
  cert_not_after_ms BIGINT NOT NULL,
  banned INTEGER NOT NULL CHECK (banned IN (0, 1)),
  can_reattest INTEGER NOT NULL CHECK (can_reattest IN (0, 1)),
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL
);

CREATE TABLE node_selectors (
  node_id TEXT NOT NULL REFERENCES attested_nodes (spiffe_id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (node_id, type, value)
);
CREATE INDEX node_selectors_type_value ON node_selectors (type, value);

CREATE TABLE join_tokens (
  token TEXT PRIMARY KEY,
  expires_at_ms BIGINT NOT NULL,
  spiffe_id TEXT,
  created_at_ms BIGINT NOT NULL
);
CREATE INDEX join_tokens_expires_at ON join_tokens (expires_at_ms);

CREATE TABLE bundles (
  trust_domain TEXT PRIMARY KEY,
  bundle_json TEXT NOT NULL,
  sequence BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL
);

-- One row at most; version makes saves optimistic (compare-and-set).
CREATE TABLE ca_journal (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  data TEXT NOT NULL,
  version BIGINT NOT NULL
);
`;

// Which X.509 authority signed the node's current SVID (its subject key ID), so that revoking an
// authority can be refused while live agents still chain to it. NULL: not recorded (older rows).
const NODE_AUTHORITY = `
ALTER TABLE attested_nodes ADD COLUMN x509_authority_id TEXT;
`;

export const SQLITE_MIGRATIONS: readonly Migration[] = Object.freeze([
  { version: 1, name: 'initial_schema', sql: INITIAL_SCHEMA },
  { version: 2, name: 'node_x509_authority', sql: NODE_AUTHORITY },
]);
