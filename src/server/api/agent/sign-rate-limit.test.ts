import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../spiffe/clock.js';
import { isSigilError } from '../../../spiffe/errors.js';
import { SignRateLimiter } from './sign-rate-limit.js';

function limiter(ratePerSecond: number, burst: number) {
  const clock = new ManualClock();
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  return { clock, lines, limiter: new SignRateLimiter({ ratePerSecond, burst, clock, logger }) };
}

function refusal(fn: () => void): Error {
  try {
    fn();
  } catch (err) {
    expect(isSigilError(err, 'ERR_RESOURCE_EXHAUSTED')).toBe(true);
    return err as Error;
  }
  throw new Error('expected a refusal');
}

describe('SignRateLimiter', () => {
  it('admits a burst, refuses past it naming the rate, and refills at the rate', async () => {
    const { clock, limiter: l } = limiter(10, 5);
    for (let i = 0; i < 5; i++) l.take('a', 1, 'MintJwtSvid');
    expect(refusal(() => l.take('a', 1, 'MintJwtSvid')).message).toBe(
      'agent a is signing too fast: at most 10 SVIDs per second (burst 5); retry in 0.1s',
    );
    await clock.advance(100);
    l.take('a', 1, 'MintJwtSvid');
    refusal(() => l.take('a', 1, 'MintJwtSvid'));
  });

  it('keeps agents apart', () => {
    const { limiter: l } = limiter(1, 1);
    l.take('a', 1, 'x');
    refusal(() => l.take('a', 1, 'x'));
    l.take('b', 1, 'x');
  });

  it('lets one large batch overdraw, then holds the agent until the debt is repaid', async () => {
    const { clock, limiter: l } = limiter(100, 10);
    l.take('a', 500, 'SignX509Svids');
    expect(refusal(() => l.take('a', 1, 'x')).message).toContain('retry in 5s');
    await clock.advance(4_800);
    refusal(() => l.take('a', 1, 'x'));
    await clock.advance(200);
    l.take('a', 1, 'x');
  });

  it('logs one line per refusal episode, not per refused call', async () => {
    const { clock, lines, limiter: l } = limiter(1, 1);
    l.take('a', 1, 'x');
    for (let i = 0; i < 50; i++) refusal(() => l.take('a', 1, 'SignX509Svids'));
    expect(lines.filter((line) => line.includes('Agent signing rate limited'))).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ agentId: 'a', rpc: 'SignX509Svids' });
    await clock.advance(1_000);
    l.take('a', 1, 'x');
    refusal(() => l.take('a', 1, 'x'));
    expect(lines).toHaveLength(2);
  });
});
