// The five SpiffeWorkloadAPI RPCs (spiffe-facts.md §5.3), after SPIRE's agent handler: admit the
// call (security header, a well-formed request, attestation of the caller from the kernel's peer
// credentials: admission.ts), validate its input, then answer from the IdentityFeed. Streams send
// the complete state at once and on every change, re-checking the caller before each; an update
// with no SVID ends the stream with PERMISSION_DENIED (redaction). Refusals are logged with pid, uid
// and reason; keys and tokens never reach a log line. WIT RPCs answer UNIMPLEMENTED (optional profile).
import type { KeyObject } from 'node:crypto';
import {
  type handleUnaryCall,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { PeerCred } from '../../attestors/workload/types.js';
import {
  type JwtSvidRequestMessage,
  type JwtSvidResponseMessage,
  toStruct,
  type ValidateJwtSvidRequestMessage,
  type ValidateJwtSvidResponseMessage,
  type X509SvidResponseMessage,
} from '../../sdk/index.js';
import { concatX509Authorities, encodeJwtJwks, type TrustBundle } from '../../spiffe/bundle.js';
import { type Clock, systemClock } from '../../spiffe/clock.js';
import { isSigilError, SigilError } from '../../spiffe/errors.js';
import { parseSpiffeId } from '../../spiffe/id.js';
import { checkJwtAudience, validateJwtSvid } from '../../spiffe/jwt-svid.js';
import { exportPkcs8Der } from '../../spiffe/keys.js';
import { admit, type Caller, type CallerProcess, checkCaller, checkSecurityHeader } from './admission.js';
import { WORKLOAD_STATUS_BY_CODE } from './error-status.js';
import type { CallerAttestor, IdentityFeed, WorkloadIdentity } from './identity-feed.js';
import { NO_WORKLOAD_API_OBSERVER, type WorkloadApiObserver } from './observer.js';
import { strictWorkloadServiceDefinition } from './request-decoding.js';

export type { CallerProcess } from './admission.js';

export interface WorkloadApiLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface WorkloadApiHandlerDeps {
  feed: IdentityFeed;
  attestor: CallerAttestor;
  /** The process behind a call; undefined when the call did not come through our listener. */
  callerOf(call: { getPeer(): string }): CallerProcess | undefined;
  logger: WorkloadApiLogger;
  /** For ValidateJWTSVID expiry checks. Defaults to the system clock. */
  clock?: Clock;
  /** Told of streams opening and closing and of every call's status (metrics). Defaults to nobody. */
  observer?: WorkloadApiObserver;
}

const NO_IDENTITY = 'no identity issued';

/** Handlers for `grpcServer.addService(strictWorkloadServiceDefinition(), …)`. */
export function createWorkloadApiHandlers(deps: WorkloadApiHandlerDeps): UntypedServiceImplementation {
  const clock = deps.clock ?? systemClock;
  const { feed, logger } = deps;
  const observer = deps.observer ?? NO_WORKLOAD_API_OBSERVER;
  const definition = strictWorkloadServiceDefinition();
  const pkcs8Cache = new WeakMap<KeyObject, Buffer>();

  function refuse(
    method: string,
    cred: PeerCred | undefined,
    err: unknown,
  ): { code: status; details: string } {
    const known = isSigilError(err) ? WORKLOAD_STATUS_BY_CODE[err.code] : status.INTERNAL;
    const fields = { method, pid: cred?.pid, uid: cred?.uid };
    if (known === status.INTERNAL) {
      // The error itself, not its message: pino's serializer logs the stack and every `cause`.
      logger.error({ ...fields, err }, 'Workload API request failed');
      return { code: status.INTERNAL, details: 'internal error' };
    }
    const e = err as SigilError;
    logger.warn(
      { ...fields, code: status[known], reason: e.reason ?? e.message, error: e.message },
      'Workload API request refused',
    );
    return { code: known, details: e.message };
  }

  /** Runs a streaming RPC: admit, then write what `render` makes of each identity update. */
  function stream(
    method: string,
    render: (identity: WorkloadIdentity) => object,
    options: { dedupe: boolean; serialize: (message: object) => Buffer },
  ) {
    return async (call: ServerWritableStream<unknown, unknown>) => {
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      const peer = deps.callerOf(call);
      const closeCall = peer?.openCall();
      observer.streamOpened(method);
      // A stream the workload cancels (or that ends with the agent) counts as CANCELLED.
      let code: status = status.CANCELLED;
      try {
        const caller = await admit(call, peer, deps.attestor, controller.signal);
        const { cred } = caller.process;
        logger.debug({ method, pid: cred.pid, uid: cred.uid }, 'Workload API stream opened');
        let previous: Buffer | undefined;
        for await (const identity of feed.watch(caller.selectors, controller.signal)) {
          // Every push is an answer to this caller: it must still be the process that connected.
          checkCaller(caller.process);
          // Redaction as much as "never had one": the workload must drop what it holds.
          if (identity.svids.length === 0) throw new SigilError('ERR_PERMISSION_DENIED', NO_IDENTITY);
          const message = render(identity);
          if (options.dedupe) {
            const bytes = options.serialize(message);
            if (previous?.equals(bytes)) continue;
            previous = bytes;
          }
          call.write(message);
        }
        if (!controller.signal.aborted) {
          throw new SigilError('ERR_UNAVAILABLE', 'identity feed closed; reconnect', {
            reason: 'feed ended',
          });
        }
      } catch (err) {
        if (!controller.signal.aborted) {
          const refusal = refuse(method, peer?.cred, err);
          code = refusal.code;
          call.emit('error', refusal);
        }
      } finally {
        controller.abort();
        closeCall?.();
        observer.streamClosed(method);
        observer.callEnded(method, status[code]);
      }
    };
  }

  function unary<Req, Res>(
    method: string,
    answer: (request: Req, caller: Caller) => Promise<Res>,
  ): handleUnaryCall<Req, Res> {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      const peer = deps.callerOf(call);
      const closeCall = peer?.openCall();
      admit(call, peer, deps.attestor, controller.signal)
        .then((admitted) => answer(call.request, admitted))
        .then(
          (response) => {
            observer.callEnded(method, 'OK');
            callback(null, response);
          },
          (err: unknown) => {
            const refusal = refuse(method, peer?.cred, err);
            observer.callEnded(method, status[refusal.code]);
            callback(refusal);
          },
        )
        .finally(() => closeCall?.());
    };
  }

  function x509SvidResponse(identity: WorkloadIdentity): X509SvidResponseMessage {
    return {
      svids: identity.svids.map((svid) => ({
        spiffe_id: svid.spiffeId,
        x509_svid: Buffer.concat(svid.chain),
        x509_svid_key: pkcs8Of(svid.key),
        bundle: concatX509Authorities(identity.bundle),
        hint: svid.hint,
      })),
      crl: [],
      federated_bundles: bundleMap(identity.federatedBundles.values(), concatX509Authorities),
    };
  }

  function pkcs8Of(key: KeyObject): Buffer {
    let der = pkcs8Cache.get(key);
    if (!der) {
      der = exportPkcs8Der(key);
      pkcs8Cache.set(key, der);
    }
    return der;
  }

  const unimplemented = (method: string) => (call: ServerWritableStream<unknown, unknown>) => {
    try {
      checkSecurityHeader(call.metadata);
      throw new SigilError(
        'ERR_NOT_IMPLEMENTED',
        `${method} is not implemented (WIT-SVID profile unsupported)`,
      );
    } catch (err) {
      const refusal = refuse(method, deps.callerOf(call)?.cred, err);
      observer.callEnded(method, status[refusal.code]);
      call.emit('error', refusal);
    }
  };

  return {
    FetchX509SVID: stream('FetchX509SVID', x509SvidResponse, {
      dedupe: false,
      serialize: definition.FetchX509SVID.responseSerialize,
    }),
    FetchX509Bundles: stream(
      'FetchX509Bundles',
      (identity) => ({ crl: [], bundles: bundleMap(allBundles(identity), concatX509Authorities) }),
      { dedupe: true, serialize: definition.FetchX509Bundles.responseSerialize },
    ),
    FetchJWTBundles: stream(
      'FetchJWTBundles',
      (identity) => ({ bundles: bundleMap(allBundles(identity), (b) => Buffer.from(encodeJwtJwks(b))) }),
      { dedupe: true, serialize: definition.FetchJWTBundles.responseSerialize },
    ),
    FetchJWTSVID: unary<JwtSvidRequestMessage, JwtSvidResponseMessage>(
      'FetchJWTSVID',
      async (request, caller) => {
        // Before anything is minted or cached: audiences are the workload's to choose (issue 9, item 6).
        checkJwtAudience(request.audience);
        let wanted: string | undefined;
        if (request.spiffe_id !== '') {
          try {
            wanted = parseSpiffeId(request.spiffe_id).toString();
          } catch (err) {
            throw invalid(`invalid requested SPIFFE ID: ${(err as Error).message}`);
          }
        }
        const svids = await feed.fetchJwtSvids(caller.selectors, request.audience, wanted);
        // The feed decides entitlement; filtering again keeps a lax feed from handing out others' IDs.
        const chosen = wanted === undefined ? svids : svids.filter((s) => s.spiffeId === wanted);
        if (chosen.length === 0) throw new SigilError('ERR_PERMISSION_DENIED', NO_IDENTITY);
        return { svids: chosen.map((s) => ({ spiffe_id: s.spiffeId, svid: s.token, hint: s.hint })) };
      },
    ),
    ValidateJWTSVID: unary<ValidateJwtSvidRequestMessage, ValidateJwtSvidResponseMessage>(
      'ValidateJWTSVID',
      async (request) => {
        if (request.audience === '') throw invalid('audience must be specified');
        checkJwtAudience([request.audience]);
        if (request.svid === '') throw invalid('svid must be specified');
        const bundles = feed.bundles();
        const validated = validateJwtSvid(request.svid, {
          audience: request.audience,
          bundleFor: (td) => bundles.get(td.name),
          nowMs: clock.nowMs(),
        });
        // SPIRE reports `aud` as a list even when the token carries a single string.
        const claims = { ...validated.claims, aud: [...validated.audience] };
        return { spiffe_id: validated.spiffeId.toString(), claims: toStruct(claims) };
      },
    ),
    FetchWITSVID: unimplemented('FetchWITSVID'),
    FetchWITBundles: unimplemented('FetchWITBundles'),
  };
}

function allBundles(identity: WorkloadIdentity): TrustBundle[] {
  return [identity.bundle, ...identity.federatedBundles.values()];
}

/** `{ "spiffe://td": bytes }` in trust-domain order, so equal states serialize to equal bytes. */
function bundleMap(
  bundles: Iterable<TrustBundle>,
  encode: (b: TrustBundle) => Buffer,
): Record<string, Buffer> {
  const sorted = [...bundles].sort((a, b) => (a.trustDomain.name < b.trustDomain.name ? -1 : 1));
  const out: Record<string, Buffer> = {};
  for (const bundle of sorted) out[bundle.trustDomain.idString] = encode(bundle);
  return out;
}

function invalid(message: string): SigilError {
  return new SigilError('ERR_INPUT_INVALID', message);
}
