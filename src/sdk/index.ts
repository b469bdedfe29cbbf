// The Workload API SDK: what the proxy, the agent's CLI and any TypeScript workload use to get
// their identity. Exports are listed by name; helpers stay private to their files.

export type { BackoffOptions } from '../spiffe/backoff.js';
export type { WorkloadEndpoint } from './address.js';
export { ENDPOINT_SOCKET_ENV, parseWorkloadEndpoint } from './address.js';
export type { JwtSvid, ValidatedToken, WatchOptions, WorkloadApiClientOptions } from './client.js';
export { WorkloadApiClient } from './client.js';
export type { JwtSourceEvents, JwtSourceOptions } from './jwt-source.js';
export { JwtSource } from './jwt-source.js';
export type { WorkloadRequestName } from './workload-codec.js';
export { decodeWorkloadRequest } from './workload-codec.js';
export type {
  JwtBundlesResponseMessage,
  JwtSvidMessage,
  JwtSvidRequestMessage,
  JwtSvidResponseMessage,
  StructMessage,
  ValidateJwtSvidRequestMessage,
  ValidateJwtSvidResponseMessage,
  ValueMessage,
  WorkloadMethodName,
  WorkloadServiceDefinition,
  X509BundlesResponseMessage,
  X509SvidMessage,
  X509SvidResponseMessage,
} from './workload-proto.js';
export {
  fromStruct,
  SECURITY_HEADER,
  SECURITY_HEADER_VALUE,
  toStruct,
  WORKLOAD_SERVICE_NAME,
  workloadServiceDefinition,
} from './workload-proto.js';
export type { X509Context, X509Svid } from './x509-context.js';
export type { X509SourceEvents, X509SourceOptions } from './x509-source.js';
export { X509Source } from './x509-source.js';
