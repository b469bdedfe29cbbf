// Whether the agent is healthy, decided from plain facts (pure, so each rule has a table test). A
// probe restarts an unhealthy agent, so "unhealthy" means it cannot do its job and will not heal by
// waiting: the server refuses it, it has nothing to serve (no entries before any sync, or entries but
// no valid X.509-SVID while no server can mint one), or its own SVID is about to lapse without a
// renewal. A server that is merely unreachable while SVIDs are valid is "degraded": still serving.

/** Unhealthy once renewal is this fraction of the SVID's life overdue (renewed at ~50%: unhealthy at ~70%). */
const OVERDUE_FRACTION = 0.2;
/** Unhealthy with less than this fraction of the SVID's life left, whatever the renewal point. */
const LAST_FRACTION = 0.1;

export interface AgentHealthFacts {
  readonly nowMs: number;
  readonly svid: { readonly notBeforeMs: number; readonly notAfterMs: number; readonly renewAtMs: number };
  /** Why the last renewal (or re-attestation) failed, while it has not succeeded since. */
  readonly lastRenewalError: string | null;
  /** Why the server refuses this agent, while it does and the agent could not attest again. */
  readonly refusedReason: string | null;
  /** A sync stream is open and has delivered the entries. */
  readonly serverConnected: boolean;
  /** Why the last connection attempt failed, while disconnected (stale bundle advice included). */
  readonly serverProblem: string | null;
  /** The server has told this agent its entries during this run (then "no entries" is the truth). */
  readonly synced: boolean;
  readonly entries: number;
  /** Workload X.509-SVIDs held that have not expired. */
  readonly unexpiredSvids: number;
}

export type AgentHealthStatus = 'ok' | 'degraded' | 'unhealthy';

export interface AgentHealth {
  readonly status: AgentHealthStatus;
  /** Why it is unhealthy (empty unless status is 'unhealthy'). */
  readonly reasons: readonly string[];
  /** What is wrong but does not stop it serving. */
  readonly warnings: readonly string[];
}

export function assessAgentHealth(facts: AgentHealthFacts): AgentHealth {
  const reasons: string[] = [];
  const warnings: string[] = [];
  const { nowMs, svid } = facts;
  const lifeMs = Math.max(1, svid.notAfterMs - svid.notBeforeMs);
  const failure = facts.lastRenewalError ? `: last attempt failed: ${facts.lastRenewalError}` : '';
  if (facts.refusedReason !== null) {
    reasons.push(
      `the server refuses this agent (${facts.refusedReason}); restart it with new attestation evidence (e.g. a new --join-token)`,
    );
  }
  if (nowMs >= svid.notAfterMs) {
    reasons.push(`the agent SVID expired at ${iso(svid.notAfterMs)}${failure}`);
  } else if (
    svid.notAfterMs - nowMs < LAST_FRACTION * lifeMs ||
    nowMs - svid.renewAtMs > OVERDUE_FRACTION * lifeMs
  ) {
    reasons.push(
      `the agent SVID expires at ${iso(svid.notAfterMs)} and was due for renewal at ${iso(svid.renewAtMs)}${failure}`,
    );
  } else if (facts.lastRenewalError) {
    warnings.push(`renewing the agent SVID failed (retrying): ${facts.lastRenewalError}`);
  }
  if (facts.entries === 0 && !facts.synced) {
    reasons.push('nothing to serve: no entries, and the server has not sent them yet');
  } else if (facts.entries > 0 && facts.unexpiredSvids === 0 && !facts.serverConnected) {
    // Zero entries after a sync is the truth for this node (healthy); entries whose SVIDs all expired
    // are not, and with no server to mint new ones, waiting will not heal it.
    reasons.push(
      `nothing to serve: ${facts.entries} ${facts.entries === 1 ? 'entry' : 'entries'} but no unexpired X.509-SVID, and the server is not connected to mint them`,
    );
  }
  if (!facts.serverConnected && facts.refusedReason === null) {
    warnings.push(
      `server unreachable; serving cached SVIDs${facts.serverProblem ? ` (${facts.serverProblem})` : ''}`,
    );
  }
  const status: AgentHealthStatus =
    reasons.length > 0 ? 'unhealthy' : warnings.length > 0 ? 'degraded' : 'ok';
  return { status, reasons, warnings };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
