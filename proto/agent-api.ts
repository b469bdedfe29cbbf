// Loads the agent <-> server API (sigil.agent.v1) and declares its messages in TypeScript. Field
// names are camelCase (proto-loader keepCase: false), int64/uint64 arrive as numbers (all values
// here are seconds or revisions, far below 2^53), bytes as Buffers.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type GrpcObject, loadPackageDefinition, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** Finds a .proto under proto/ both from source (proto/*.ts) and from dist/proto/*.js. */
export function protoFile(relative: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, relative);
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
    const nested = path.join(dir, 'proto', relative);
    if (existsSync(nested)) return nested;
  }
  throw new Error(`proto file ${relative} not found next to ${fileURLToPath(import.meta.url)}`);
}

const definition = loadSync(protoFile('sigil/agent/v1/agent.proto'), {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});
const pkg = loadPackageDefinition(definition) as unknown as { sigil: { agent: { v1: GrpcObject } } };

export const AgentApiClient = pkg.sigil.agent.v1.AgentApi as ServiceClientConstructor;
export const agentApiService = AgentApiClient.service;

export interface WireSelector {
  type: string;
  value: string;
}

export interface WireEntry {
  id: string;
  spiffeId: string;
  parentId: string;
  selectors: WireSelector[];
  x509SvidTtl: number;
  jwtSvidTtl: number;
  dnsNames: string[];
  federatesWith: string[];
  admin: boolean;
  downstream: boolean;
  hint: string;
  expiresAt: number;
  revision: number;
}

export interface AttestParams {
  attestor: string;
  payload: Buffer;
  csr: Buffer;
}

export type AttestRequest =
  | { params: AttestParams; step?: 'params' }
  | { challengeResponse: Buffer; step?: 'challengeResponse' };

export interface AttestResult {
  spiffeId: string;
  svidChain: Buffer[];
  bundle: Buffer;
  canReattest: boolean;
}

export type AttestResponse =
  | { challenge: Buffer; step?: 'challenge' }
  | { result: AttestResult; step?: 'result' };

export interface SyncEntriesRequest {
  sinceRevision: number;
}

export interface SyncEntriesResponse {
  snapshotBegin: boolean;
  snapshotEnd: boolean;
  upserted: WireEntry[];
  deletedIds: string[];
  revision: number;
  bundle: Buffer;
  federatedBundles: Record<string, Buffer>;
  federatedBundlesSet: boolean;
  taintedAuthorities: string[];
}

export interface SvidRequest {
  entryId: string;
  csr: Buffer;
}

export interface SvidResult {
  entryId: string;
  svidChain: Buffer[];
  expiresAt: number;
  error: string;
}

export interface MintJwtSvidRequest {
  entryId: string;
  audience: string[];
}

export interface MintJwtSvidResponse {
  token: string;
  expiresAt: number;
}

export interface FetchBundlesResponse {
  bundle: Buffer;
  federatedBundles: Record<string, Buffer>;
}
