// The `unix` workload attestor: config parsing, factory and its injectable OS lookups.

export type { NameLookup } from './accounts.js';
export { groupLookup, passwdLookup } from './accounts.js';
export type { UnixAttestorConfig } from './config.js';
export { DEFAULT_WORKLOAD_SIZE_LIMIT_BYTES, parseUnixAttestorConfig } from './config.js';
export type { UnixAttestorDeps } from './unix-attestor.js';
export { createUnixAttestor, UNIX_ATTESTOR_NAME } from './unix-attestor.js';
