// The JWT-SVID cache's bounds (issue 9, item 6): bytes as well as count, and one entry's share.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { ENTRY_SHARE_DIVISOR, JwtSvidCache } from './jwt-cache.js';

const TTL_MS = 60_000;

/** A mint that returns a token of `tokenBytes` characters and counts its calls. */
function minter(clock: ManualClock) {
  let calls = 0;
  return {
    calls: () => calls,
    mint: (tokenBytes: number) => async () => {
      calls++;
      return { token: `t${calls}`.padEnd(tokenBytes, '.'), expiresAtMs: clock.nowMs() + TTL_MS };
    },
  };
}

describe('JwtSvidCache', () => {
  it('never holds more than its byte and count bounds, or an entry more than its share, under a random workload', async () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('get' as const),
        entry: fc.integer({ min: 0, max: 11 }),
        audience: fc.array(fc.string({ minLength: 1, maxLength: 1024 }), { minLength: 1, maxLength: 4 }),
        tokenBytes: fc.integer({ min: 100, max: 20_000 }),
      }),
      fc.record({ kind: fc.constant('drop' as const), entry: fc.integer({ min: 0, max: 11 }) }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: TTL_MS }) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 8, max: 200 }),
        fc.integer({ min: 20_000, max: 400_000 }),
        fc.array(op, { maxLength: 150 }),
        async (maxTokens, maxBytes, ops) => {
          const clock = new ManualClock();
          const cache = new JwtSvidCache(clock, { maxTokens, maxBytes });
          const { mint } = minter(clock);
          for (const o of ops) {
            if (o.kind === 'get') await cache.get(`e${o.entry}`, o.audience, mint(o.tokenBytes));
            else if (o.kind === 'drop') cache.dropEntry(`e${o.entry}`);
            else await clock.advance(o.ms);
            expect(cache.bytes).toBeLessThanOrEqual(maxBytes);
            expect(cache.size).toBeLessThanOrEqual(maxTokens);
            for (let e = 0; e < 12; e++) {
              const share = cache.shareOf(`e${e}`);
              expect(share.bytes).toBeLessThanOrEqual(maxBytes / ENTRY_SHARE_DIVISOR);
              expect(share.tokens).toBeLessThanOrEqual(
                Math.max(1, Math.floor(maxTokens / ENTRY_SHARE_DIVISOR)),
              );
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("a workload cycling through large audiences evicts its own tokens, not other identities'", async () => {
    const clock = new ManualClock();
    const cache = new JwtSvidCache(clock, { maxTokens: 10_000, maxBytes: 1024 * 1024 });
    const { mint, calls } = minter(clock);
    const others = ['db', 'api', 'web'];
    for (const entry of others) await cache.get(entry, ['billing'], mint(800));
    for (let i = 0; i < 2_000; i++) await cache.get('greedy', [`aud-${i}`.padEnd(1000, 'x')], mint(2_000));
    expect(cache.shareOf('greedy').bytes).toBeLessThanOrEqual((1024 * 1024) / ENTRY_SHARE_DIVISOR);
    const before = calls();
    for (const entry of others) await cache.get(entry, ['billing'], mint(800));
    expect(calls()).toBe(before); // still cached
  });

  it("serves, without caching, a token larger than an entry's share", async () => {
    const clock = new ManualClock();
    const cache = new JwtSvidCache(clock, { maxBytes: 8 * 1024 });
    const { mint, calls } = minter(clock);
    const token = await cache.get('web', ['a'], mint(2_000));
    expect(token).toHaveLength(2_000);
    expect(cache.size).toBe(0);
    await cache.get('web', ['a'], mint(2_000));
    expect(calls()).toBe(2);
  });
});
