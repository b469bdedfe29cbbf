// Round robin over a candidate list that may change between calls (ejections, a retry avoiding the
// last endpoint): the cursor wraps to the start when the list shrinks below it. One balancer holds
// one RoundRobin; nothing is allocated per call.

export class RoundRobin {
  /**
   * `start`: the first index. Giving each proxy a random start spreads the first requests of many
   * proxies that start together, rather than all sending their first to the same endpoint.
   */
  constructor(private cursor = 0) {}

  /** The next of the first `count` candidates; undefined when there are none. */
  next<E>(candidates: readonly E[], count: number): E | undefined {
    if (count <= 0) return undefined;
    const index = this.cursor >= 0 && this.cursor < count ? this.cursor : 0;
    this.cursor = index + 1;
    return candidates[index];
  }
}
