// The Workload API client: one-shot fetches and long-lived watches over the SpiffeWorkloadAPI
// service, always sending the security header. Watches reconnect with jittered backoff on every
// failure except INVALID_ARGUMENT (the server says the request itself is wrong, so retrying cannot
// help; go-spiffe stops there too) and UNIMPLEMENTED. It holds no state beyond the connection:
// caching the latest SVIDs is X509Source's job. Calls go through our own small gRPC transport and
// codec rather than @grpc/grpc-js and protobufjs, which every sidecar would otherwise load.
import { Backoff, type BackoffOptions, sleep } from '../spiffe/backoff.js';
import type { TrustBundle } from '../spiffe/bundle.js';
import { type Clock, systemClock } from '../spiffe/clock.js';
import { isSigilError, SigilError, type SigilErrorCode } from '../spiffe/errors.js';
import { parseSpiffeId, type SpiffeId } from '../spiffe/id.js';
import { ENDPOINT_SOCKET_ENV, parseWorkloadEndpoint, type WorkloadEndpoint } from './address.js';
import { GRPC_STATUS_NAMES, GrpcCallError, type GrpcStatusName, GrpcTransport } from './grpc-transport.js';
import {
  decodeJwtBundlesResponseMessage,
  decodeJwtSvidResponseMessage,
  decodeValidateJwtSvidResponseMessage,
  decodeX509BundlesResponseMessage,
  decodeX509SvidResponseMessage,
  EMPTY_REQUEST,
  encodeJwtSvidRequest,
  encodeValidateJwtSvidRequest,
} from './workload-codec.js';
import {
  fromStruct,
  SECURITY_HEADER,
  SECURITY_HEADER_VALUE,
  WORKLOAD_SERVICE_NAME,
  type WorkloadMethodName,
} from './workload-proto.js';
import {
  decodeJwtBundlesResponse,
  decodeX509BundlesResponse,
  decodeX509SvidResponse,
  type X509Context,
  type X509Svid,
} from './x509-context.js';

export interface WorkloadApiClientOptions {
  /** `unix:///abs/path` or `tcp://IP:port`. Defaults to `env.SPIFFE_ENDPOINT_SOCKET`. */
  address?: string;
  /** Where SPIFFE_ENDPOINT_SOCKET is read from when `address` is absent. Defaults to an empty env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Times watch backoffs. Defaults to the system clock. */
  clock?: Clock;
  /** Jitter source in [0, 1). Defaults to crypto.getRandomValues. */
  random?: () => number;
  /** Reconnect delays of watches. Defaults to 1s doubling up to 30s. */
  backoff?: BackoffOptions;
  /**
   * Called with the socket path before every connection to a `unix://` endpoint; throwing refuses
   * it, and the call fails with that error. CLIs and the proxy pass checkSocketForClient here, so a
   * socket planted by another user never hands them SVIDs and bundles. None by default.
   */
  checkSocket?: (socketPath: string) => void;
}

export interface WatchOptions {
  /** Called with each failure before the watch backs off and reconnects. */
  onError?: (err: SigilError) => void;
}

export interface JwtSvid {
  readonly spiffeId: SpiffeId;
  readonly token: string;
  readonly hint: string;
  readonly audience: readonly string[];
  readonly expiresAtMs: number;
}

export interface ValidatedToken {
  readonly spiffeId: SpiffeId;
  readonly claims: Readonly<Record<string, unknown>>;
}

/** gRPC status → SigilError code: the one table for this edge. Anything else counts as unreachable. */
const STATUS_CODES: ReadonlyMap<GrpcStatusName, SigilErrorCode> = new Map([
  ['PERMISSION_DENIED', 'ERR_PERMISSION_DENIED'],
  ['INVALID_ARGUMENT', 'ERR_INPUT_INVALID'],
  ['UNIMPLEMENTED', 'ERR_NOT_IMPLEMENTED'],
  ['UNAUTHENTICATED', 'ERR_UNAUTHENTICATED'],
]);
/** Failures a watch must not retry: the request is wrong, or the server lacks the RPC. */
const FINAL_CODES: ReadonlySet<SigilErrorCode> = new Set(['ERR_INPUT_INVALID', 'ERR_NOT_IMPLEMENTED']);

export class WorkloadApiClient {
  readonly endpoint: WorkloadEndpoint;
  private readonly transport: GrpcTransport;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly backoff: Backoff;

  constructor(options: WorkloadApiClientOptions = {}) {
    const address = options.address ?? options.env?.[ENDPOINT_SOCKET_ENV];
    if (address === undefined || address === '') {
      throw new SigilError(
        'ERR_CONFIG_INVALID',
        `workload api: no address given and ${ENDPOINT_SOCKET_ENV} is not set (e.g. unix:///run/sigil-agent/public/api.sock)`,
        { field: ENDPOINT_SOCKET_ENV },
      );
    }
    this.endpoint = parseWorkloadEndpoint(address);
    this.transport = new GrpcTransport(
      this.endpoint,
      { [SECURITY_HEADER]: SECURITY_HEADER_VALUE },
      options.checkSocket,
    );
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.backoff = Backoff.create(options.backoff);
  }

  /** The first FetchX509SVID message: SVIDs and bundles. */
  fetchX509Context(signal?: AbortSignal): Promise<X509Context> {
    return this.first('FetchX509SVID', decodeX509Context, signal);
  }

  async fetchX509Svids(signal?: AbortSignal): Promise<readonly X509Svid[]> {
    return (await this.fetchX509Context(signal)).svids;
  }

  /** Calls `onUpdate` with every X.509 context until `signal` aborts; rejects only on a final error. */
  watchX509Svids(
    onUpdate: (context: X509Context) => void,
    signal: AbortSignal,
    options: WatchOptions = {},
  ): Promise<void> {
    return this.watch('FetchX509SVID', decodeX509Context, onUpdate, signal, options);
  }

  fetchX509Bundles(signal?: AbortSignal): Promise<Map<string, TrustBundle>> {
    return this.first('FetchX509Bundles', decodeX509Bundles, signal);
  }

  watchX509Bundles(
    onUpdate: (bundles: Map<string, TrustBundle>) => void,
    signal: AbortSignal,
    options: WatchOptions = {},
  ): Promise<void> {
    return this.watch('FetchX509Bundles', decodeX509Bundles, onUpdate, signal, options);
  }

  fetchJwtBundles(signal?: AbortSignal): Promise<Map<string, TrustBundle>> {
    return this.first('FetchJWTBundles', decodeJwtBundles, signal);
  }

  watchJwtBundles(
    onUpdate: (bundles: Map<string, TrustBundle>) => void,
    signal: AbortSignal,
    options: WatchOptions = {},
  ): Promise<void> {
    return this.watch('FetchJWTBundles', decodeJwtBundles, onUpdate, signal, options);
  }

  /** The default (first) JWT-SVID for `audience`, or the one for `spiffeId`. */
  async fetchJwtSvid(
    audience: string | readonly string[],
    spiffeId?: string,
    signal?: AbortSignal,
  ): Promise<JwtSvid> {
    return (await this.fetchJwtSvids(audience, spiffeId, signal))[0]!;
  }

  /** Every JWT-SVID the workload is entitled to for `audience` (or only the one for `spiffeId`). */
  async fetchJwtSvids(
    audience: string | readonly string[],
    spiffeId?: string,
    signal?: AbortSignal,
  ): Promise<JwtSvid[]> {
    const request = encodeJwtSvidRequest({
      audience: typeof audience === 'string' ? [audience] : [...audience],
      spiffe_id: spiffeId ?? '',
    });
    const response = decodeJwtSvidResponseMessage(await this.unary('FetchJWTSVID', request, signal));
    if (response.svids.length === 0) {
      throw new SigilError('ERR_PERMISSION_DENIED', 'workload api: FetchJWTSVID returned no SVIDs', {
        reason: 'empty',
      });
    }
    return response.svids.map((svid, i) => decodeJwtSvid(svid.spiffe_id, svid.svid, svid.hint, i));
  }

  /** Asks the agent to validate `token` for `audience`; ERR_INPUT_INVALID when it is not valid. */
  async validateJwtSvid(token: string, audience: string, signal?: AbortSignal): Promise<ValidatedToken> {
    const response = decodeValidateJwtSvidResponseMessage(
      await this.unary('ValidateJWTSVID', encodeValidateJwtSvidRequest({ audience, svid: token }), signal),
    );
    return Object.freeze({
      spiffeId: parseSpiffeId(response.spiffe_id, 'spiffe_id'),
      claims: Object.freeze(fromStruct(response.claims)),
    });
  }

  close(): void {
    this.transport.close();
  }

  // ---- transport ---------------------------------------------------------------------------------

  private async unary(method: WorkloadMethodName, request: Buffer, signal?: AbortSignal): Promise<Buffer> {
    try {
      return await this.transport.unary(methodPath(method), request, signal);
    } catch (err) {
      if (signal?.aborted) throw abortedError(method);
      // The socket check's own refusal passes through as it was, like any non-gRPC error.
      throw err instanceof GrpcCallError ? fromCallError(method, err) : err;
    }
  }

  /** Opens a stream, resolves with the first message decoded, then cancels the stream. */
  private first<T>(method: WorkloadMethodName, decode: (m: Buffer) => T, signal?: AbortSignal): Promise<T> {
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      this.stream(method, controller.signal, (message) => {
        settled = true;
        resolve(decode(message));
        controller.abort();
      })
        .then(() => {
          if (!settled) {
            reject(
              signal?.aborted
                ? abortedError(method)
                : new SigilError(
                    'ERR_UNAVAILABLE',
                    `workload api: ${method}: stream ended before the first message`,
                  ),
            );
          }
        })
        .catch(reject);
    }).finally(() => signal?.removeEventListener('abort', onAbort));
  }

  private async watch<T>(
    method: WorkloadMethodName,
    decode: (m: Buffer) => T,
    onUpdate: (value: T) => void,
    signal: AbortSignal,
    options: WatchOptions,
  ): Promise<void> {
    let backoff = this.backoff;
    while (!signal.aborted) {
      try {
        await this.stream(method, signal, (message) => {
          const value = decode(message);
          backoff = backoff.reset();
          onUpdate(value);
        });
        if (signal.aborted) return;
        throw new SigilError('ERR_UNAVAILABLE', `workload api: ${method}: the server ended the stream`);
      } catch (err) {
        if (signal.aborted) return;
        const error = isSigilError(err)
          ? err
          : new SigilError('ERR_UNAVAILABLE', `workload api: ${method}: ${String(err)}`, { cause: err });
        if (FINAL_CODES.has(error.code)) throw error;
        options.onError?.(error);
      }
      await sleep(this.clock, backoff.delayMs(this.random), signal);
      backoff = backoff.next();
    }
  }

  /**
   * Runs one server stream (every streaming RPC here takes an empty request). Resolves when it ends
   * cleanly or `signal` aborts; rejects with a SigilError for a non-OK status, or with what
   * `onMessage` threw (the stream is then cancelled).
   */
  private async stream(
    method: WorkloadMethodName,
    signal: AbortSignal,
    onMessage: (message: Buffer) => void,
  ): Promise<void> {
    try {
      await this.transport.call(methodPath(method), EMPTY_REQUEST, onMessage, signal);
    } catch (err) {
      // The transport rejects with what onMessage threw as it was, and with a GrpcCallError otherwise.
      if (!(err instanceof GrpcCallError)) throw err;
      if (signal.aborted) return;
      throw fromCallError(method, err);
    }
  }
}

// Wire bytes → SDK values: the protobuf codec, then the checks and shapes of x509-context.ts.
const decodeX509Context = (m: Buffer) => decodeX509SvidResponse(decodeX509SvidResponseMessage(m));
const decodeX509Bundles = (m: Buffer) => decodeX509BundlesResponse(decodeX509BundlesResponseMessage(m));
const decodeJwtBundles = (m: Buffer) => decodeJwtBundlesResponse(decodeJwtBundlesResponseMessage(m));

function methodPath(method: WorkloadMethodName): string {
  return `/${WORKLOAD_SERVICE_NAME}/${method}`;
}

function decodeJwtSvid(spiffeIdText: string, token: string, hint: string, i: number): JwtSvid {
  const spiffeId = parseSpiffeId(spiffeIdText, `svids[${i}].spiffe_id`);
  // Read, not verified: the agent just minted it, and the workload holds no key to check it with.
  const claims = readClaims(token, i);
  const aud = claims.aud;
  const audience =
    typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a) => typeof a === 'string') : [];
  const exp = typeof claims.exp === 'number' ? claims.exp * 1000 : 0;
  return Object.freeze({ spiffeId, token, hint, audience: Object.freeze(audience), expiresAtMs: exp });
}

function readClaims(token: string, i: number): Record<string, unknown> {
  const part = token.split('.')[1] ?? '';
  try {
    const claims: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (claims !== null && typeof claims === 'object' && !Array.isArray(claims)) {
      return claims as Record<string, unknown>;
    }
  } catch (err) {
    throw new SigilError('ERR_JWT_INVALID', `workload api: svids[${i}].svid claims are not JSON`, {
      cause: err,
    });
  }
  throw new SigilError('ERR_JWT_INVALID', `workload api: svids[${i}].svid claims are not a JSON object`);
}

function fromCallError(method: string, err: GrpcCallError): SigilError {
  const statusName = GRPC_STATUS_NAMES[err.code] ?? String(err.code);
  const code = STATUS_CODES.get(statusName as GrpcStatusName) ?? 'ERR_UNAVAILABLE';
  return new SigilError(code, `workload api: ${method}: ${err.details || 'no details'} (${statusName})`, {
    reason: statusName,
    cause: err,
  });
}

function abortedError(method: string): SigilError {
  return new SigilError('ERR_UNAVAILABLE', `workload api: ${method}: aborted by the caller`, {
    reason: 'aborted',
  });
}

/** Jitter only spreads reconnects; it needs no cryptographic quality, only independence across processes. */
function systemRandom(): number {
  const buf = new Uint32Array(1);
  globalThis.crypto.getRandomValues(buf);
  return buf[0]! / 2 ** 32;
}
