// One inbound HTTP/1.1 request (or WebSocket upgrade), in order: refuse what the app could read
// differently from us (a path normalize.ts refuses, two Host fields) with 400; authorize the
// normalized path; take a token of the listener's rate limits (429 past them; a request the
// policy denies spends none); forward exactly that path, with hop-by-hop and forged identity
// headers removed and the verified identity added. Whatever the policy decided on is what the app
// receives.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Clock } from '../../spiffe/clock.js';
import { REFUSAL_STATUS } from '../errors.js';
import { closeWhenIdle, type ListenerGuard } from '../guard.js';
import { type FilteredHeaders, type FilterOptions, filterHeaders } from '../headers.js';
import { type Pool, refuseUpgrade, relayRequest, requestHead, respondWithError } from '../http-relay.js';
import type { ProxyIdentity, VerifiedPeer } from '../identity.js';
import type { ProxyLogger } from '../logger.js';
import { type ProxyMetrics, type RequestSeries, responseClassOf } from '../metrics.js';
import { pipeSockets } from '../pipe.js';
import {
  type NormalizedTarget,
  normalizeRequestTarget,
  type PathNormalization,
} from '../policy/normalize.js';
import {
  type RateLimitGate,
  type RateLimitRefusal,
  refuseUpgradeRateLimited,
  respondRateLimited,
} from '../ratelimit/index.js';
import { type AdmittedTarget, requestRefusal } from '../request-refusal.js';
import { parseDeadline } from '../resilience/deadline.js';
import type { RequestTracer } from '../tracing/request-tracer.js';
import { type EnforcementContext, enforce } from './authorize.js';
import { appendPeerHeaders, IDENTITY_HEADERS } from './peer-headers.js';

/** What the HTTP handlers of one inbound listener share. */
export interface InboundHttpContext {
  readonly name: string;
  readonly app: { readonly host: string; readonly port: number };
  readonly identity: ProxyIdentity;
  readonly metrics: ProxyMetrics;
  readonly logger: ProxyLogger;
  readonly enforcement: EnforcementContext;
  readonly guard: ListenerGuard;
  readonly pathNormalization: PathNormalization;
  /** Reads the time for propagated deadlines. */
  readonly clock: Clock;
  /** The listener's rate limits; null when it has none. */
  readonly rateLimiter: RateLimitGate | null;
  /** Spans and access log lines; null: off. */
  readonly tracer: RequestTracer | null;
  /** The listener's request series by source and destination ID (metrics.ts seriesMemo). */
  readonly seriesOf: (sourceId: string, destinationId: string) => RequestSeries;
}

const STRIP_IDENTITY: FilterOptions = { strip: IDENTITY_HEADERS };
const STRIP_IDENTITY_KEEP_UPGRADE: FilterOptions = { strip: IDENTITY_HEADERS, keepUpgrade: true };

/** The proxy's own answer to a request it does not relay: status, `x-sigil-error`, one line of text. */
interface Answer {
  readonly status: number;
  readonly error: string;
  readonly text: string;
}

const DEADLINE_PASSED: Answer = Object.freeze({
  status: 504,
  error: 'deadline-exceeded',
  text: 'sigil proxy: the request arrived after its deadline (x-sigil-deadline)',
});

const FORBIDDEN: Answer = Object.freeze({
  status: 403,
  error: 'forbidden',
  text: 'sigil proxy: forbidden by policy',
});

export function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  peer: VerifiedPeer | null,
  pool: Pool,
  context: InboundHttpContext,
): void {
  // Latency is elapsed time on the monotonic clock, not the injected one (which decides expiry).
  const startedMs = performance.now();
  const principal = peer?.spiffeId ?? null;
  const ownId = context.identity.spiffeId;
  const series = context.seriesOf(principal ?? 'plaintext', ownId);
  const target = normalizeRequestTarget(req.url ?? '', context.pathNormalization);
  const filtered = filterHeaders(req.rawHeaders, STRIP_IDENTITY);
  const admitted = admit(req, target, filtered, peer, context);
  if (typeof admitted !== 'string') {
    // Drain whatever body was sent so the connection stays usable for the next request.
    req.resume();
    if ('limit' in admitted) respondRateLimited(res, admitted);
    else respondWithError(res, admitted.status, admitted.error, admitted.text);
    series.record(responseClassOf(statusOf(admitted)), (performance.now() - startedMs) / 1_000);
    return;
  }
  addIdentityHeaders(filtered, peer, ownId, context);
  const traced =
    context.tracer === null
      ? null
      : context.tracer.startInbound(
          context.name,
          req.method ?? 'GET',
          admitted,
          filtered.headers,
          principal,
          ownId,
        );
  relayRequest(pool, req, res, admitted, filtered, (outcome) => {
    series.record(outcome.responseClass, (performance.now() - startedMs) / 1_000);
    if (traced !== null) traced.end(res.statusCode, outcome.error, null);
    if (outcome.error !== null) {
      context.logger.warn(
        {
          listener: context.name,
          source_id: principal,
          destination_id: ownId,
          err: outcome.error instanceof Error ? outcome.error.message : String(outcome.error),
        },
        'Request to the app failed',
      );
    }
  });
}

export function handleUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  peer: VerifiedPeer | null,
  context: InboundHttpContext,
): void {
  const principal = peer?.spiffeId ?? null;
  const target = normalizeRequestTarget(req.url ?? '', context.pathNormalization);
  const filtered = filterHeaders(req.rawHeaders, STRIP_IDENTITY_KEEP_UPGRADE);
  const admitted = admit(req, target, filtered, peer, context);
  if (typeof admitted !== 'string') {
    if ('limit' in admitted) refuseUpgradeRateLimited(socket, admitted);
    else refuseUpgrade(socket, admitted.status, admitted.error, admitted.text);
    return;
  }
  const ownId = context.identity.spiffeId;
  addIdentityHeaders(filtered, peer, ownId, context);
  const app = connect({ host: context.app.host, port: context.app.port, noDelay: true });
  app.write(requestHead(req.method, admitted, filtered.headers));
  if (head.length > 0) app.write(head);
  // Upgraded, the connection is a pipe: no more heads or bodies to time, only silence.
  closeWhenIdle(app, context.guard, { source_id: principal, destination_id: ownId });
  pipeSockets(socket, app, () => {});
}

function statusOf(refused: Answer | RateLimitRefusal): number {
  return 'limit' in refused ? REFUSAL_STATUS['rate-limited'] : refused.status;
}

/**
 * The target to forward if the request may go to the app, else what to answer instead. First what
 * the app could read differently from the policy (counted and logged here), then the policy
 * (enforce() counts and logs its decision), the caller's deadline, and last the rate limits (the
 * gate counts and logs), so only a request that would reach the app spends a token.
 */
function admit(
  req: IncomingMessage,
  target: NormalizedTarget,
  filtered: FilteredHeaders,
  peer: VerifiedPeer | null,
  context: InboundHttpContext,
): string | Answer | RateLimitRefusal {
  const principal = peer?.spiffeId ?? null;
  const refusal = requestRefusal(target, filtered);
  if (refusal !== null) {
    context.guard.refused(refusal.reason, {
      source_id: principal,
      destination_id: context.identity.spiffeId,
      method: req.method,
      ...refusal.fields,
    });
    return { status: refusal.status, error: refusal.reason, text: `sigil proxy: ${refusal.message}` };
  }
  const admitted = target as AdmittedTarget;
  const request = {
    principal,
    port: context.app.port,
    protocol: 'http',
    method: req.method,
    path: admitted.path,
  } as const;
  if (!enforce(context.enforcement, request).allow) return FORBIDDEN;
  // The caller has given up by now: the app's work would be thrown away (resilience/deadline.ts).
  const deadline = parseDeadline(filtered.signals.deadline);
  if (deadline !== null && deadline <= context.clock.nowMs()) return DEADLINE_PASSED;
  return context.rateLimiter?.admit(principal) ?? admitted.target;
}

/**
 * Hop-by-hop and caller-sent identity headers are already gone; each of the latter is logged (a
 * caller claiming an identity is worth a look) before the verified identity headers are added.
 */
function addIdentityHeaders(
  filtered: FilteredHeaders,
  peer: VerifiedPeer | null,
  ownId: string,
  context: InboundHttpContext,
): void {
  for (const header of filtered.stripped) {
    context.logger.warn(
      { listener: context.name, header, source_id: peer?.spiffeId ?? null, destination_id: ownId },
      'Stripped identity header sent by the caller',
    );
  }
  appendPeerHeaders(
    filtered.headers,
    ownId,
    peer === null ? null : { spiffeId: peer.spiffeId, leafSha256Hex: peer.leafSha256Hex },
  );
}
