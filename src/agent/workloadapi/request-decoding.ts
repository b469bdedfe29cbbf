// The service definition the agent serves: proto-loader's, which encodes our responses, with every
// request deserializer replaced by the SDK's strict decoder (protobufjs reads truncated lengths,
// wrong wire types and invalid UTF-8 without complaint, and we minted JWTs for what it made of
// them). grpc-js answers INTERNAL "Error deserializing request" when a deserializer throws, without
// calling the handler (server-interceptors.ts, decompressAndMaybePush), so here the decoder never
// throws: a request that does not parse arrives as a MalformedRequest, which the handler refuses
// with INVALID_ARGUMENT naming the problem, and logs.
import {
  decodeWorkloadRequest,
  type WorkloadMethodName,
  type WorkloadRequestName,
  type WorkloadServiceDefinition,
  workloadServiceDefinition,
} from '../../sdk/index.js';
import { isSigilError, SigilError } from '../../spiffe/errors.js';

/** A request whose bytes did not parse; `error` (ERR_INPUT_INVALID) says why. */
export class MalformedRequest {
  constructor(readonly error: SigilError) {}
}

const REQUEST_OF: Readonly<Record<WorkloadMethodName, WorkloadRequestName>> = {
  FetchX509SVID: 'X509SVIDRequest',
  FetchX509Bundles: 'X509BundlesRequest',
  FetchJWTSVID: 'JWTSVIDRequest',
  FetchJWTBundles: 'JWTBundlesRequest',
  ValidateJWTSVID: 'ValidateJWTSVIDRequest',
  FetchWITSVID: 'WITSVIDRequest',
  FetchWITBundles: 'WITBundlesRequest',
};

let cached: WorkloadServiceDefinition | undefined;

/** workloadServiceDefinition() with strict request decoding; built once. */
export function strictWorkloadServiceDefinition(): WorkloadServiceDefinition {
  if (cached) return cached;
  const loaded = workloadServiceDefinition();
  const strict: Record<string, unknown> = {};
  for (const [method, definition] of Object.entries(loaded)) {
    const name = REQUEST_OF[method as WorkloadMethodName];
    strict[method] = { ...definition, requestDeserialize: (buf: Buffer) => decodeOrMark(name, buf) };
  }
  cached = strict as WorkloadServiceDefinition;
  return cached;
}

function decodeOrMark(name: WorkloadRequestName, buf: Buffer): object {
  try {
    return decodeWorkloadRequest(name, buf);
  } catch (err) {
    if (isSigilError(err)) return new MalformedRequest(err);
    // A fault of the decoder itself: still never a request to act on.
    return new MalformedRequest(new SigilError('ERR_INPUT_INVALID', `malformed ${name}`, { cause: err }));
  }
}
