// Per-upstream state in one place: what layers keep about an upstream across requests (retry
// budget, breaker, latency EWMA) belongs to the upstream, not to a stack or a route, and must
// survive a reload that rebuilds the stacks (as linkerd's TpsBudget and grpc-js' RetryThrottler do).
// The owner of reloads keeps one UpstreamStates and hands it to every rebuild.

/** One upstream's state. Layers that keep state add their field here; none does yet. */
export interface UpstreamState {
  /** The upstream's name (the outbound listener's, today). */
  readonly name: string;
}

export class UpstreamStates {
  private readonly byName = new Map<string, UpstreamState>();

  /** The state of upstream `name`, created on first use and the same object on every later call. */
  stateFor(name: string): UpstreamState {
    let state = this.byName.get(name);
    if (state === undefined) {
      state = { name };
      this.byName.set(name, state);
    }
    return state;
  }
}
