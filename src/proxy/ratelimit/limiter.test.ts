import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { PLAINTEXT_CALLER, type RateLimitConfig, RateLimiter } from './limiter.js';

const A = 'spiffe://example.org/ns/web/sa/a';
const B = 'spiffe://example.org/ns/web/sa/b';
const ETL = 'spiffe://example.org/ns/batch/sa/etl';
const PARTNER = 'spiffe://partner.test/billing';

/** One clock per test file is enough: each test makes its own limiter, and time only moves forward. */
const clock = new ManualClock();

function limiter(config: Partial<RateLimitConfig>, maxCallers?: number) {
  const full: RateLimitConfig = { total: null, perCaller: null, overrides: [], ...config };
  return { clock, limiter: new RateLimiter(full, { clock, maxCallers }) };
}

/** How many of `count` back-to-back requests from `caller` are admitted. */
function admitted(l: RateLimiter, caller: string, count: number): number {
  let n = 0;
  for (let i = 0; i < count; i++) if (l.check(caller, clock.nowMs()) === null) n++;
  return n;
}

describe('RateLimiter', () => {
  it('gives each caller its own burst and rate', async () => {
    const { clock, limiter: l } = limiter({ perCaller: { requestsPerSecond: 10, burst: 5 } });
    expect(admitted(l, A, 8)).toBe(5);
    expect(l.check(A, clock.nowMs())).toEqual({ limit: 'per_caller', retryAfterMs: 100 });
    // B is not affected by A's exhaustion.
    expect(admitted(l, B, 8)).toBe(5);
    await clock.advance(300);
    expect(admitted(l, A, 8)).toBe(3);
  });

  it('limits every caller together under the total', async () => {
    const { clock, limiter: l } = limiter({ total: { requestsPerSecond: 100, burst: 4 } });
    expect(admitted(l, A, 3)).toBe(3);
    expect(admitted(l, B, 3)).toBe(1);
    expect(l.check(A, clock.nowMs())).toEqual({ limit: 'total', retryAfterMs: 10 });
    await clock.advance(10);
    expect(l.check(B, clock.nowMs())).toBeNull();
  });

  it('spends no total token on a request its caller limit refuses, and no caller token on one the total refuses', async () => {
    const { clock, limiter: l } = limiter({
      total: { requestsPerSecond: 1, burst: 3 },
      perCaller: { requestsPerSecond: 1, burst: 2 },
    });
    // A's third and fourth requests are refused by its own limit: the total keeps its third token.
    expect(admitted(l, A, 4)).toBe(2);
    expect(l.check(B, clock.nowMs())).toBeNull();
    // The total is empty: B's refusal leaves B's second token in its bucket.
    expect(l.check(B, clock.nowMs())).toEqual({ limit: 'total', retryAfterMs: 1000 });
    await clock.advance(1000);
    expect(l.check(B, clock.nowMs())).toBeNull();
    await clock.advance(1000);
    // Had the refusal spent it, B would have had to wait for its own refill too.
    expect(l.check(B, clock.nowMs())).toBeNull();
  });

  it('sizes a named principal by its override, exact ID first, then its trust domain', () => {
    const { limiter: l } = limiter({
      perCaller: { requestsPerSecond: 1, burst: 2 },
      overrides: [
        { principals: [ETL], requestsPerSecond: 1, burst: 10 },
        { principals: ['spiffe://partner.test/*'], requestsPerSecond: 1, burst: 4 },
        { principals: ['spiffe://example.org/*'], requestsPerSecond: 1, burst: 3 },
      ],
    });
    expect(admitted(l, ETL, 20)).toBe(10);
    expect(l.check(ETL, clock.nowMs())?.limit).toBe('override');
    expect(admitted(l, PARTNER, 20)).toBe(4);
    expect(admitted(l, A, 20)).toBe(3);
    expect(l.check(A, clock.nowMs())?.limit).toBe('override');
    expect(admitted(l, 'spiffe://other.test/x', 20)).toBe(2);
    expect(l.check('spiffe://other.test/x', clock.nowMs())?.limit).toBe('per_caller');
  });

  it('limits only the overridden principals when there is no per-caller rate', () => {
    const { limiter: l } = limiter({ overrides: [{ principals: [ETL], requestsPerSecond: 1, burst: 2 }] });
    expect(admitted(l, ETL, 5)).toBe(2);
    expect(admitted(l, A, 100)).toBe(100);
    expect(l.callerCount).toBe(1);
  });

  it('keys every plaintext caller to one bucket', () => {
    const { limiter: l } = limiter({ perCaller: { requestsPerSecond: 1, burst: 3 } });
    expect(admitted(l, PLAINTEXT_CALLER, 5)).toBe(3);
    expect(l.check(PLAINTEXT_CALLER, clock.nowMs())?.limit).toBe('per_caller');
  });

  it('keeps at most maxCallers buckets, forgetting full or unused ones before those used since', async () => {
    const { clock, limiter: l } = limiter({ perCaller: { requestsPerSecond: 1, burst: 2 } }, 3);
    const id = (n: number) => `spiffe://example.org/c${n}`;
    // c0 and c1 spend both tokens; c2 spends one, and refills within the second.
    expect(admitted(l, id(0), 2)).toBe(2);
    expect(admitted(l, id(1), 2)).toBe(2);
    expect(admitted(l, id(2), 1)).toBe(1);
    await clock.advance(1000);
    // c2 is full again: it goes, though c0 and c1 came before it (and were used since: a second chance).
    expect(l.check(id(3), clock.nowMs())).toBeNull();
    expect(l.callerCount).toBe(3);
    // c0 and c1 still owe their limits (each got one token back in the second).
    expect(admitted(l, id(0), 3)).toBe(1);
    expect(admitted(l, id(1), 3)).toBe(1);
    // None is full now; c0 and c1 were used again, c3 was not since it came: c3 goes, and only it.
    expect(l.check(id(4), clock.nowMs())).toBeNull();
    expect(l.callerCount).toBe(3);
    expect(l.check(id(0), clock.nowMs())?.limit).toBe('per_caller');
    expect(admitted(l, id(3), 3)).toBe(2);
  });

  it('stays within maxCallers under a flood of new callers', () => {
    const { limiter: l } = limiter({ perCaller: { requestsPerSecond: 1, burst: 1 } }, 100);
    for (let i = 0; i < 5_000; i++) l.check(`spiffe://example.org/flood/${i}`, clock.nowMs());
    expect(l.callerCount).toBe(100);
  });

  it('stays within maxCallers when every caller is in use, after at most 32 second chances', () => {
    const { limiter: l } = limiter({ perCaller: { requestsPerSecond: 1, burst: 5 } }, 100);
    const id = (n: number) => `spiffe://example.org/busy/${n}`;
    for (let i = 0; i < 100; i++) admitted(l, id(i), 2);
    for (let i = 100; i < 1_000; i++) {
      admitted(l, id(i), 2);
      expect(l.callerCount).toBe(100);
    }
    // The newest callers kept their buckets (each spent 2 of 5): none was forgotten on arrival.
    expect(admitted(l, id(999), 5)).toBe(3);
  });

  it('gives a caller used again a second chance over one that was not', () => {
    const { limiter: l } = limiter({ perCaller: { requestsPerSecond: 1, burst: 5 } }, 2);
    l.check(A, clock.nowMs());
    l.check(B, clock.nowMs());
    // A is used again: B is now the least recently used, and goes for C.
    l.check(A, clock.nowMs());
    l.check(ETL, clock.nowMs());
    expect(admitted(l, A, 5)).toBe(3);
    expect(admitted(l, B, 5)).toBe(5);
  });
});
