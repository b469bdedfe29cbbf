// Power of two choices: draw two distinct candidates at random and take the cheaper. Nearly as good
// as scanning for the least loaded, in O(1), and it does not herd: many proxies that each scanned
// would all pick the same momentarily idle endpoint (Mitzenmacher; Linkerd's and Envoy's balancers).

/**
 * Picks among the first `count` of `candidates` (a reused array may hold more: nothing is allocated).
 * Ties go to the first drawn. None -> undefined; one -> it. `random` returns a number in [0, 1).
 */
export function pickP2C<E>(
  candidates: readonly E[],
  count: number,
  cost: (e: E) => number,
  random: () => number,
): E | undefined {
  if (count <= 1) return count === 1 ? candidates[0] : undefined;
  const i = indexBelow(count, random);
  // Draw the second from the other count - 1 slots, so the two are distinct without a retry loop.
  let j = indexBelow(count - 1, random);
  if (j >= i) j++;
  const a = candidates[i]!;
  const b = candidates[j]!;
  return cost(b) < cost(a) ? b : a;
}

/** A uniform index in [0, n); clamped in case `random` returns 1. */
function indexBelow(n: number, random: () => number): number {
  return Math.min(n - 1, Math.floor(random() * n));
}
