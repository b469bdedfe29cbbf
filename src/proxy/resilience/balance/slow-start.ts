// Slow start: a new endpoint (just added, or back from ejection if the caller resets its age) gets a
// rising share of traffic over a window instead of its full share at once, so a cold cache or JIT is
// not swamped. The weight rises linearly from MIN_WEIGHT to 1; P2C divides the cost by it, round
// robin skips a warming endpoint with probability 1 - weight.

/** The weight at age 0: a new endpoint takes a tenth of its share rather than none (it must warm up). */
export const MIN_SLOW_START_WEIGHT = 0.1;

/** From 0.1 at age 0 rising linearly to 1 at `windowMs`; always 1 with a zero window. */
export function slowStartWeight(ageMs: number, windowMs: number): number {
  if (windowMs <= 0 || ageMs >= windowMs) return 1;
  if (ageMs <= 0) return MIN_SLOW_START_WEIGHT;
  return MIN_SLOW_START_WEIGHT + (1 - MIN_SLOW_START_WEIGHT) * (ageMs / windowMs);
}

/** Whether round robin passes over an endpoint of `weight` this turn: with probability 1 - weight. */
export function shouldSkipWarming(weight: number, random: () => number): boolean {
  return weight < 1 && random() >= weight;
}
