// One inbound HTTP/1.1 request (or WebSocket upgrade), in order: refuse what the app could read
// differently from us (a path normalize.ts refuses, two Host fields) with 400; authorize the
// normalized path; forward exactly that path, with hop-by-hop and forged identity headers removed
// and the verified identity added. Whatever the policy decided on is what the app receives.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { REFUSAL_STATUS } from '../errors.js';
import { closeWhenIdle, type ListenerGuard } from '../guard.js';
import { type FilteredHeaders, type FilterOptions, filterHeaders } from '../headers.js';
import { type Pool, refuseUpgrade, relayRequest, requestHead, respondWithError } from '../http-relay.js';
import type { ProxyIdentity, VerifiedPeer } from '../identity.js';
import type { ProxyLogger } from '../logger.js';
import type { ProxyMetrics } from '../metrics.js';
import { pipeSockets } from '../pipe.js';
import {
  type NormalizedPath,
  type NormalizedTarget,
  normalizeRequestTarget,
  type PathNormalization,
} from '../policy/normalize.js';
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
}

const STRIP_IDENTITY: FilterOptions = { strip: IDENTITY_HEADERS };
const STRIP_IDENTITY_KEEP_UPGRADE: FilterOptions = { strip: IDENTITY_HEADERS, keepUpgrade: true };

/** Why a request is refused before it is authorized; the reason is also `x-sigil-error`. */
interface Refusal {
  readonly reason: 'bad-path' | 'duplicate-host';
  readonly message: string;
}

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
  const series = context.metrics.requestSeries(context.name, 'inbound', principal ?? 'plaintext', ownId);
  const target = normalizeRequestTarget(req.url ?? '', context.pathNormalization);
  const filtered = filterHeaders(req.rawHeaders, STRIP_IDENTITY);
  const refusal = target.ok && filtered.hostCount <= 1 ? null : refuse(req, target, filtered, peer, context);
  if (refusal !== null || !target.ok || !authorize(req, target.path, principal, context)) {
    // Drain whatever body was sent so the connection stays usable for the next request.
    req.resume();
    if (refusal === null) respondWithError(res, 403, 'forbidden', 'sigil proxy: forbidden by policy');
    else {
      const status = REFUSAL_STATUS[refusal.reason];
      respondWithError(res, status, refusal.reason, `sigil proxy: ${refusal.message}`);
    }
    series.record('4xx', (performance.now() - startedMs) / 1_000);
    return;
  }
  addIdentityHeaders(filtered, peer, ownId, context);
  relayRequest(pool, req, res, target.target, filtered, (outcome) => {
    series.record(outcome.responseClass, (performance.now() - startedMs) / 1_000);
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
  if (!target.ok || filtered.hostCount > 1) {
    const { reason, message } = refuse(req, target, filtered, peer, context);
    refuseUpgrade(socket, REFUSAL_STATUS[reason], reason, `sigil proxy: ${message}`);
    return;
  }
  if (!authorize(req, target.path, principal, context)) {
    refuseUpgrade(socket, 403, 'forbidden', 'sigil proxy: forbidden by policy');
    return;
  }
  const ownId = context.identity.spiffeId;
  addIdentityHeaders(filtered, peer, ownId, context);
  const app = connect({ host: context.app.host, port: context.app.port, noDelay: true });
  app.write(requestHead(req.method, target.target, filtered.headers));
  if (head.length > 0) app.write(head);
  // Upgraded, the connection is a pipe: no more heads or bodies to time, only silence.
  closeWhenIdle(app, context.guard, { source_id: principal, destination_id: ownId });
  pipeSockets(socket, app, () => {});
}

function authorize(
  req: IncomingMessage,
  path: NormalizedPath | null,
  principal: string | null,
  context: InboundHttpContext,
): boolean {
  const request = { principal, port: context.app.port, protocol: 'http', method: req.method, path } as const;
  return enforce(context.enforcement, request).allow;
}

/**
 * Why the app could read this request differently from the policy (a path normalize.ts refuses,
 * or two Host fields); counted and logged here.
 */
function refuse(
  req: IncomingMessage,
  target: NormalizedTarget,
  filtered: FilteredHeaders,
  peer: VerifiedPeer | null,
  context: InboundHttpContext,
): Refusal {
  const refusal: Refusal = target.ok
    ? {
        reason: 'duplicate-host',
        message: `request has ${filtered.hostCount} Host header fields; one is allowed`,
      }
    : { reason: 'bad-path', message: target.message };
  context.guard.refused(refusal.reason, {
    source_id: peer?.spiffeId ?? null,
    destination_id: context.identity.spiffeId,
    method: req.method,
    err: refusal.message,
    ...(target.ok ? {} : { path_refusal: target.reason }),
  });
  return refusal;
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
