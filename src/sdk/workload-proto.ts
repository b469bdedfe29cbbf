// The Workload API wire contract: proto/spiffe/workload/workload.proto loaded with
// @grpc/proto-loader for the agent's grpc-js server, the message shapes it yields, and
// google.protobuf.Struct <-> JSON. The SDK client does not load the proto: it encodes the same
// messages itself (workload-codec.ts), so proto-loader and protobufjs are required only on the first
// workloadServiceDefinition() call, never by a process that merely fetches its identity.
// Field names keep the proto's snake_case (keepCase) so they read like the spec's tables.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';
import { SigilError } from '../spiffe/errors.js';

/** No `package` statement in the proto, so this is the fully-qualified service name. */
export const WORKLOAD_SERVICE_NAME = 'SpiffeWorkloadAPI';
/** Metadata every Workload API request carries, with exactly this value (spiffe-facts.md §5.3). */
export const SECURITY_HEADER = 'workload.spiffe.io';
export const SECURITY_HEADER_VALUE = 'true';

export interface X509SvidMessage {
  spiffe_id: string;
  x509_svid: Buffer;
  x509_svid_key: Buffer;
  bundle: Buffer;
  hint: string;
}
export interface X509SvidResponseMessage {
  svids: X509SvidMessage[];
  crl: Buffer[];
  federated_bundles: Record<string, Buffer>;
}
export interface X509BundlesResponseMessage {
  crl: Buffer[];
  bundles: Record<string, Buffer>;
}
export interface JwtSvidRequestMessage {
  audience: string[];
  spiffe_id: string;
}
export interface JwtSvidMessage {
  spiffe_id: string;
  svid: string;
  hint: string;
}
export interface JwtSvidResponseMessage {
  svids: JwtSvidMessage[];
}
export interface JwtBundlesResponseMessage {
  bundles: Record<string, Buffer>;
}
export interface ValidateJwtSvidRequestMessage {
  audience: string;
  svid: string;
}
export interface ValidateJwtSvidResponseMessage {
  spiffe_id: string;
  claims: StructMessage | null;
}

/**
 * google.protobuf.Struct as proto-loader shows it. Its fields are camelCase even with keepCase:
 * protobufjs serves google/protobuf/struct.proto from its bundled JSON descriptors, which are
 * written in camelCase. Only names differ; the wire (field numbers) is the official one.
 */
export interface StructMessage {
  fields: Record<string, ValueMessage>;
}
export interface ValueMessage {
  kind?: 'nullValue' | 'numberValue' | 'stringValue' | 'boolValue' | 'structValue' | 'listValue';
  nullValue?: 'NULL_VALUE' | 0;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: StructMessage;
  listValue?: { values: ValueMessage[] };
}

export type WorkloadMethodName =
  | 'FetchX509SVID'
  | 'FetchX509Bundles'
  | 'FetchJWTSVID'
  | 'FetchJWTBundles'
  | 'ValidateJWTSVID'
  | 'FetchWITSVID'
  | 'FetchWITBundles';

export type WorkloadServiceDefinition = ServiceDefinition & {
  // biome-ignore lint/suspicious/noExplicitAny: proto-loader method types are per-message; callers pin them
  readonly [K in WorkloadMethodName]: MethodDefinition<any, any>;
};

let cached: WorkloadServiceDefinition | undefined;

/** The SpiffeWorkloadAPI service definition, loaded from the proto on first use. */
export function workloadServiceDefinition(): WorkloadServiceDefinition {
  if (cached) return cached;
  const protoFile = findProtoFile();
  const { loadSync } = createRequire(import.meta.url)('@grpc/proto-loader') as typeof ProtoLoader;
  const packageDefinition = loadSync(protoFile, {
    keepCase: true,
    // No int64 fields in this proto; String keeps any future one exact.
    longs: String,
    enums: String,
    // Every message is complete (spec): absent scalars read as their defaults, not undefined.
    defaults: true,
    oneofs: true,
    // google/protobuf/struct.proto comes from protobufjs's bundled common types; this directory
    // is only needed for our own file.
    includeDirs: [path.dirname(protoFile)],
  });
  cached = packageDefinition[WORKLOAD_SERVICE_NAME] as unknown as WorkloadServiceDefinition;
  return cached;
}

/** The proto ships in `proto/` at the package root; this file runs from src/sdk or dist/src/sdk. */
function findProtoFile(): string {
  const relative = 'proto/spiffe/workload/workload.proto';
  for (const up of ['../../', '../../../']) {
    const candidate = fileURLToPath(new URL(up + relative, import.meta.url));
    if (existsSync(candidate)) return candidate;
  }
  throw new SigilError('ERR_CONFIG_INVALID', `workload api: ${relative} not found next to the sigil package`);
}

/** JSON claims to google.protobuf.Struct. Values JSON cannot hold (undefined, functions) are dropped. */
export function toStruct(object: Readonly<Record<string, unknown>>): StructMessage {
  const fields: Record<string, ValueMessage> = {};
  for (const [key, value] of Object.entries(object)) {
    const encoded = toValue(value);
    if (encoded) fields[key] = encoded;
  }
  return { fields };
}

function toValue(value: unknown): ValueMessage | undefined {
  if (value === null) return { kind: 'nullValue', nullValue: 'NULL_VALUE' };
  switch (typeof value) {
    case 'number':
      return { kind: 'numberValue', numberValue: value };
    case 'string':
      return { kind: 'stringValue', stringValue: value };
    case 'boolean':
      return { kind: 'boolValue', boolValue: value };
    case 'object':
      if (Array.isArray(value)) {
        return {
          kind: 'listValue',
          listValue: {
            values: value.map((v) => toValue(v) ?? { kind: 'nullValue', nullValue: 'NULL_VALUE' }),
          },
        };
      }
      return { kind: 'structValue', structValue: toStruct(value as Record<string, unknown>) };
    default:
      return undefined;
  }
}

/** google.protobuf.Struct back to plain JSON values. */
export function fromStruct(struct: StructMessage | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(struct?.fields ?? {})) defineEntry(out, key, fromValue(value));
  return out;
}

/**
 * Sets `key` as an own property, as JSON.parse does: a plain assignment of a `__proto__` key from
 * the wire would replace the object's prototype instead.
 */
export function defineEntry<V>(target: Record<string, V>, key: string, value: V): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function fromValue(value: ValueMessage): unknown {
  switch (value.kind) {
    case 'numberValue':
      return value.numberValue;
    case 'stringValue':
      return value.stringValue;
    case 'boolValue':
      return value.boolValue;
    case 'structValue':
      return fromStruct(value.structValue);
    case 'listValue':
      return (value.listValue?.values ?? []).map(fromValue);
    default:
      return null;
  }
}
