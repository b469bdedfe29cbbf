// Enforcing authorization on inbound traffic. Deciding is the policy engine's job (policy/evaluate.ts
// is pure); this file only asks the Authorizer, counts the decision and logs refusals with both
// SPIFFE IDs and the deciding rule (STYLE.md §11). The policy engine is adapted to Authorizer.
import type { ProxyLogger } from '../logger.js';
import type { CountCell, ProxyMetrics } from '../metrics.js';
import type { NormalizedPath } from '../policy/normalize.js';

export interface AuthorizationRequest {
  /** The caller's verified SPIFFE ID; null for a plaintext caller (permissive mode). */
  readonly principal: string | null;
  /** The app port the inbound listener protects. */
  readonly port: number;
  readonly protocol: 'http' | 'tcp';
  readonly method?: string;
  /** Normalized (policy/normalize.ts): the very path the app will receive; null for `OPTIONS *`. */
  readonly path?: NormalizedPath | null;
}

export interface AuthorizationDecision {
  readonly allow: boolean;
  /** Why, for logs: short, may name the policy. */
  readonly reason: string;
  /** The rule that decided; null when a default decided. */
  readonly rule: string | null;
}

export interface Authorizer {
  authorize(request: AuthorizationRequest): AuthorizationDecision;
  /**
   * Whether requests to `port` can only be decided with their method or path. An `http2`
   * listener then relays its connections stream by stream instead of as an opaque pipe.
   */
  needsRequestDetails(port: number): boolean;
}

export interface EnforcementContext {
  readonly listener: string;
  readonly authorizer: Authorizer;
  readonly metrics: ProxyMetrics;
  readonly logger: ProxyLogger;
  /** Our own SPIFFE ID now (it may change on rotation), for the refusal log. */
  readonly ownId: () => string;
}

/**
 * Per listener, the last decision counted and its cell. The policy authorizer hands back the same
 * decision object for a request it has seen, so the next one usually skips joining and hashing the
 * cell's labels (metrics.ts).
 */
const lastCounted = new WeakMap<EnforcementContext, { decision: AuthorizationDecision; cell: CountCell }>();

/** Asks the authorizer, counts the result and logs a denial. Returns the decision for the caller to act on. */
export function enforce(context: EnforcementContext, request: AuthorizationRequest): AuthorizationDecision {
  const decision = context.authorizer.authorize(request);
  let last = lastCounted.get(context);
  if (last === undefined || last.decision !== decision) {
    const cell = context.metrics.authzDecisionCell(
      context.listener,
      decision.rule ?? 'none',
      decision.allow ? 'allow' : 'deny',
    );
    last = { decision, cell };
    lastCounted.set(context, last);
  }
  last.cell.value++;
  if (!decision.allow) {
    context.logger.warn(
      {
        listener: context.listener,
        source_id: request.principal,
        destination_id: context.ownId(),
        rule: decision.rule,
        reason: decision.reason,
        protocol: request.protocol,
        port: request.port,
        method: request.method,
        path: request.path,
      },
      'Request denied by policy',
    );
  }
  return decision;
}
