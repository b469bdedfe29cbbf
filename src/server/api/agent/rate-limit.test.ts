import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../spiffe/clock.js';
import { RateLimiter } from './rate-limit.js';

function limiter(ratePerSecond: number, burst: number) {
  const clock = new ManualClock();
  return { clock, limiter: new RateLimiter({ ratePerSecond, burst, clock }) };
}

describe('RateLimiter', () => {
  it('admits a burst, refuses past it saying when to retry, and refills at the rate', async () => {
    const { clock, limiter: l } = limiter(10, 5);
    for (let i = 0; i < 5; i++) expect(l.take('a', 1)).toBeNull();
    expect(l.take('a', 1)).toEqual({ retryAfterS: 0.1, firstOfEpisode: true });
    await clock.advance(100);
    expect(l.take('a', 1)).toBeNull();
    expect(l.take('a', 1)).not.toBeNull();
  });

  it('keeps keys apart', () => {
    const { limiter: l } = limiter(1, 1);
    expect(l.take('a', 1)).toBeNull();
    expect(l.take('a', 1)).not.toBeNull();
    expect(l.take('b', 1)).toBeNull();
  });

  it('lets one large batch overdraw, then holds the key until the debt is repaid', async () => {
    const { clock, limiter: l } = limiter(100, 10);
    expect(l.take('a', 500)).toBeNull();
    expect(l.take('a', 1)?.retryAfterS).toBe(5);
    await clock.advance(4_800);
    expect(l.take('a', 1)).not.toBeNull();
    await clock.advance(200);
    expect(l.take('a', 1)).toBeNull();
  });

  it('marks only the first refusal of an episode, and charges nothing for refusals', async () => {
    const { clock, limiter: l } = limiter(1, 1);
    expect(l.take('a', 1)).toBeNull();
    const refusals = Array.from({ length: 50 }, () => l.take('a', 1));
    expect(refusals.filter((r) => r?.firstOfEpisode)).toHaveLength(1);
    // Fifty refused calls did not push the next token further away.
    await clock.advance(1_000);
    expect(l.take('a', 1)).toBeNull();
    expect(l.take('a', 1)?.firstOfEpisode).toBe(true);
  });
});
