// The Workload API client: one-shot fetches and long-lived watches over the SpiffeWorkloadAPI
// service, always sending the security header. Watches reconnect with jittered backoff on every
// failure except INVALID_ARGUMENT (the server says the request itself is wrong, so retrying cannot
// help; go-spiffe stops there too) and UNIMPLEMENTED. It holds no state beyond the gRPC channel:
// caching the latest SVIDs is X509Source's job.
import {
  type CallOptions,
  Client,
  type ClientReadableStream,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { Backoff, type BackoffOptions, sleep } from '../spiffe/backoff.js';
import type { TrustBundle } from '../spiffe/bundle.js';
import { type Clock, systemClock } from '../spiffe/clock.js';
import { isSigilError, SigilError, type SigilErrorCode } from '../spiffe/errors.js';
import { parseSpiffeId, type SpiffeId } from '../spiffe/id.js';
import { ENDPOINT_SOCKET_ENV, parseWorkloadEndpoint, type WorkloadEndpoint } from './address.js';
import {
  fromStruct,
  type JwtBundlesResponseMessage,
  type JwtSvidRequestMessage,
  type JwtSvidResponseMessage,
  SECURITY_HEADER,
  SECURITY_HEADER_VALUE,
  type ValidateJwtSvidRequestMessage,
  type ValidateJwtSvidResponseMessage,
  type WorkloadMethodName,
  workloadServiceDefinition,
  type X509BundlesResponseMessage,
  type X509SvidResponseMessage,
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
const STATUS_CODES: ReadonlyMap<number, SigilErrorCode> = new Map([
  [status.PERMISSION_DENIED, 'ERR_PERMISSION_DENIED'],
  [status.INVALID_ARGUMENT, 'ERR_INPUT_INVALID'],
  [status.UNIMPLEMENTED, 'ERR_NOT_IMPLEMENTED'],
  [status.UNAUTHENTICATED, 'ERR_UNAUTHENTICATED'],
]);
/** Failures a watch must not retry: the request is wrong, or the server lacks the RPC. */
const FINAL_CODES: ReadonlySet<SigilErrorCode> = new Set(['ERR_INPUT_INVALID', 'ERR_NOT_IMPLEMENTED']);

export class WorkloadApiClient {
  readonly endpoint: WorkloadEndpoint;
  private readonly client: Client;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly backoff: Backoff;

  constructor(options: WorkloadApiClientOptions = {}) {
    const address = options.address ?? options.env?.[ENDPOINT_SOCKET_ENV];
    if (address === undefined || address === '') {
      throw new SigilError(
        'ERR_CONFIG_INVALID',
        `workload api: no address given and ${ENDPOINT_SOCKET_ENV} is not set (e.g. unix:///tmp/sigil-agent/public/api.sock)`,
        { field: ENDPOINT_SOCKET_ENV },
      );
    }
    this.endpoint = parseWorkloadEndpoint(address);
    this.client = new Client(this.endpoint.grpcTarget, credentials.createInsecure());
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.backoff = Backoff.create(options.backoff);
  }

  /** The first FetchX509SVID message: SVIDs and bundles. */
  fetchX509Context(signal?: AbortSignal): Promise<X509Context> {
    return this.first<X509SvidResponseMessage, X509Context>(
      'FetchX509SVID',
      {},
      decodeX509SvidResponse,
      signal,
    );
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
    return this.watch('FetchX509SVID', decodeX509SvidResponse, onUpdate, signal, options);
  }

  fetchX509Bundles(signal?: AbortSignal): Promise<Map<string, TrustBundle>> {
    return this.first<X509BundlesResponseMessage, Map<string, TrustBundle>>(
      'FetchX509Bundles',
      {},
      decodeX509BundlesResponse,
      signal,
    );
  }

  watchX509Bundles(
    onUpdate: (bundles: Map<string, TrustBundle>) => void,
    signal: AbortSignal,
    options: WatchOptions = {},
  ): Promise<void> {
    return this.watch('FetchX509Bundles', decodeX509BundlesResponse, onUpdate, signal, options);
  }

  fetchJwtBundles(signal?: AbortSignal): Promise<Map<string, TrustBundle>> {
    return this.first<JwtBundlesResponseMessage, Map<string, TrustBundle>>(
      'FetchJWTBundles',
      {},
      decodeJwtBundlesResponse,
      signal,
    );
  }

  watchJwtBundles(
    onUpdate: (bundles: Map<string, TrustBundle>) => void,
    signal: AbortSignal,
    options: WatchOptions = {},
  ): Promise<void> {
    return this.watch('FetchJWTBundles', decodeJwtBundlesResponse, onUpdate, signal, options);
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
    const request: JwtSvidRequestMessage = {
      audience: typeof audience === 'string' ? [audience] : [...audience],
      spiffe_id: spiffeId ?? '',
    };
    const response = await this.unary<JwtSvidRequestMessage, JwtSvidResponseMessage>(
      'FetchJWTSVID',
      request,
      signal,
    );
    if (response.svids.length === 0) {
      throw new SigilError('ERR_PERMISSION_DENIED', 'workload api: FetchJWTSVID returned no SVIDs', {
        reason: 'empty',
      });
    }
    return response.svids.map((svid, i) => decodeJwtSvid(svid.spiffe_id, svid.svid, svid.hint, i));
  }

  /** Asks the agent to validate `token` for `audience`; ERR_INPUT_INVALID when it is not valid. */
  async validateJwtSvid(token: string, audience: string, signal?: AbortSignal): Promise<ValidatedToken> {
    const response = await this.unary<ValidateJwtSvidRequestMessage, ValidateJwtSvidResponseMessage>(
      'ValidateJWTSVID',
      { audience, svid: token },
      signal,
    );
    return Object.freeze({
      spiffeId: parseSpiffeId(response.spiffe_id, 'spiffe_id'),
      claims: Object.freeze(fromStruct(response.claims)),
    });
  }

  close(): void {
    this.client.close();
  }

  // ---- transport ---------------------------------------------------------------------------------

  private metadata(): Metadata {
    const metadata = new Metadata();
    metadata.set(SECURITY_HEADER, SECURITY_HEADER_VALUE);
    return metadata;
  }

  private unary<Req, Res>(method: WorkloadMethodName, request: Req, signal?: AbortSignal): Promise<Res> {
    const def = workloadServiceDefinition()[method];
    return new Promise<Res>((resolve, reject) => {
      if (signal?.aborted) return reject(abortedError(method));
      const call = this.client.makeUnaryRequest<Req, Res>(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        this.metadata(),
        {} satisfies CallOptions,
        (err, response) => {
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(signal?.aborted ? abortedError(method) : fromServiceError(method, err));
          else resolve(response!);
        },
      );
      const onAbort = () => call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Opens a stream, resolves with the first message decoded, then cancels the stream. */
  private first<M, T>(
    method: WorkloadMethodName,
    request: object,
    decode: (m: M) => T,
    signal?: AbortSignal,
  ): Promise<T> {
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      this.stream<M>(method, request, controller.signal, (message) => {
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

  private async watch<M, T>(
    method: WorkloadMethodName,
    decode: (m: M) => T,
    onUpdate: (value: T) => void,
    signal: AbortSignal,
    options: WatchOptions,
  ): Promise<void> {
    let backoff = this.backoff;
    while (!signal.aborted) {
      try {
        await this.stream<M>(method, {}, signal, (message) => {
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
   * Runs one server stream. Resolves when it ends cleanly or `signal` aborts; rejects with a
   * SigilError for a non-OK status or when `onMessage` throws (the stream is then cancelled).
   */
  private stream<M>(
    method: WorkloadMethodName,
    request: object,
    signal: AbortSignal,
    onMessage: (message: M) => void,
  ): Promise<void> {
    const def = workloadServiceDefinition()[method];
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return resolve();
      const call: ClientReadableStream<M> = this.client.makeServerStreamRequest<object, M>(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        this.metadata(),
      );
      let failure: unknown;
      const onAbort = () => call.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
      call.on('data', (message: M) => {
        if (failure !== undefined) return;
        try {
          onMessage(message);
        } catch (err) {
          failure = err;
          call.cancel();
        }
      });
      call.on('error', (err: ServiceError) => {
        signal.removeEventListener('abort', onAbort);
        if (failure !== undefined) reject(failure);
        else if (signal.aborted) resolve();
        else reject(fromServiceError(method, err));
      });
      call.on('end', () => {
        signal.removeEventListener('abort', onAbort);
        if (failure !== undefined) reject(failure);
        else resolve();
      });
    });
  }
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

function fromServiceError(method: string, err: ServiceError): SigilError {
  const code = STATUS_CODES.get(err.code) ?? 'ERR_UNAVAILABLE';
  const statusName = status[err.code] ?? String(err.code);
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
