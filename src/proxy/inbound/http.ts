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
import { type NormalizedPath, normalizeRequestTarget, type PathNormalization } from '../policy/normalize.js';
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

type CheckedRequest =
  | {
      readonly ok: true;
      readonly path: NormalizedPath | null;
      /** The request target the app receives. */
      readonly target: string;
      readonly filtered: FilteredHeaders;
    }
  | { readonly ok: false; readonly reason: 'bad-path' | 'duplicate-host'; readonly message: string };

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
  const checked = checkRequest(req, peer, context, STRIP_IDENTITY);
  const allowed = checked.ok && authorize(req, checked.path, principal, context);
  if (!allowed) {
    // Drain whatever body was sent so the connection stays usable for the next request.
    req.resume();
    if (checked.ok) respondWithError(res, 403, 'forbidden', 'sigil proxy: forbidden by policy');
    else
      respondWithError(
        res,
        REFUSAL_STATUS[checked.reason],
        checked.reason,
        `sigil proxy: ${checked.message}`,
      );
    series.record('4xx', (performance.now() - startedMs) / 1_000);
    return;
  }
  const { target, filtered } = checked;
  addIdentityHeaders(filtered, peer, ownId, context);
  relayRequest(pool, req, res, { path: target, ...filtered }, (outcome) => {
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
  const checked = checkRequest(req, peer, context, STRIP_IDENTITY_KEEP_UPGRADE);
  if (!checked.ok) {
    refuseUpgrade(socket, REFUSAL_STATUS[checked.reason], checked.reason, `sigil proxy: ${checked.message}`);
    return;
  }
  if (!authorize(req, checked.path, principal, context)) {
    refuseUpgrade(socket, 403, 'forbidden', 'sigil proxy: forbidden by policy');
    return;
  }
  const ownId = context.identity.spiffeId;
  addIdentityHeaders(checked.filtered, peer, ownId, context);
  const app = connect({ host: context.app.host, port: context.app.port, noDelay: true });
  app.write(requestHead(req.method, checked.target, checked.filtered.headers));
  if (head.length > 0) app.write(head);
  // Upgraded, the connection is a pipe: no more heads or bodies to time, only silence.
  closeWhenIdle(socket, context.guard, { source_id: principal, destination_id: ownId });
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

/** The normalized target and filtered headers, or why the request must be refused (logged here). */
function checkRequest(
  req: IncomingMessage,
  peer: VerifiedPeer | null,
  context: InboundHttpContext,
  filter: FilterOptions,
): CheckedRequest {
  const normalized = normalizeRequestTarget(req.url ?? '', context.pathNormalization);
  let refusal: CheckedRequest;
  if (!normalized.ok) {
    refusal = { ok: false, reason: 'bad-path', message: normalized.message };
  } else {
    const filtered = filterHeaders(req.rawHeaders, filter);
    if (filtered.hostCount <= 1)
      return { ok: true, path: normalized.path, target: normalized.target, filtered };
    refusal = {
      ok: false,
      reason: 'duplicate-host',
      message: `request has ${filtered.hostCount} Host header fields; one is allowed`,
    };
  }
  context.guard.refused(refusal.reason, {
    source_id: peer?.spiffeId ?? null,
    destination_id: context.identity.spiffeId,
    method: req.method,
    err: refusal.message,
    ...(normalized.ok ? {} : { path_refusal: normalized.reason }),
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
