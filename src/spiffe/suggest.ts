// "Did you mean …?" for the three CLIs: the closest known name to a mistyped flag or command, by
// edit distance with transpositions (a swapped pair of letters is the commonest typo). Inputs are
// bounded, so a huge argument costs nothing and never yields a suggestion.

/** Longer inputs are not typos of any flag or command we have; they get no suggestion. */
const MAX_INPUT_CHARS = 64;

/**
 * The candidate closest to `input`, or undefined when none is close enough to be a plausible typo:
 * within about a third of the name's length in edits, or `input` being a prefix of just one candidate.
 */
export function closestMatch(input: string, candidates: readonly string[]): string | undefined {
  const core = input.replace(/^-+/, '');
  // One or two letters (`-x`) are as close to every short flag as to any other: no guess.
  if (core.length < 3 || input.length > MAX_INPUT_CHARS) return undefined;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    if (candidate === input || candidate.length > MAX_INPUT_CHARS) continue;
    const distance = editDistance(input.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined && bestDistance <= Math.max(1, Math.floor(core.length / 3))) return best;
  const extending = candidates.filter((c) => c.startsWith(input) && c !== input);
  return extending.length === 1 ? extending[0] : undefined;
}

/** `; did you mean X?` when a candidate is close, else the empty string: appended to an error line. */
export function didYouMean(input: string, candidates: readonly string[]): string {
  const match = closestMatch(input, candidates);
  return match === undefined ? '' : `; did you mean ${match}?`;
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
function editDistance(a: string, b: string): number {
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, beforePrevious[j - 2]! + 1);
      }
      current.push(value);
    }
    beforePrevious = previous;
    previous = current;
  }
  return previous[b.length]!;
}
