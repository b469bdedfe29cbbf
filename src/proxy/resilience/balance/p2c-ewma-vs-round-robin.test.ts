// The pure-logic version of the balancing e2e test: on a simulated clock, with one endpoint 50 ms
// slower than the other two, P2C over peak EWMA must send it clearly less traffic than round robin.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../spiffe/clock.js';
import { seededRandom } from '../../../spiffe/seeded-random.test-support.js';
import { PeakEwma } from './ewma.js';
import { pickP2C } from './p2c.js';
import { RoundRobin } from './round-robin.js';

interface SimEndpoint {
  readonly latencyMs: number;
  readonly ewma: PeakEwma;
  outstanding: number;
  served: number;
}

const DECAY_MS = 10_000;
const ARRIVAL_EVERY_MS = 2;
const REQUESTS = 10_000;

/** Sends REQUESTS requests, one every 2 ms, each taking its endpoint's latency; returns each endpoint's share and the mean latency. */
async function simulate(policy: 'p2c-ewma' | 'round-robin') {
  const clock = new ManualClock();
  const random = seededRandom(11);
  const endpoints: SimEndpoint[] = [5, 5, 55].map((latencyMs) => ({
    latencyMs,
    ewma: new PeakEwma(DECAY_MS, clock),
    outstanding: 0,
    served: 0,
  }));
  const roundRobin = new RoundRobin();
  const cost = (e: SimEndpoint) => e.ewma.cost(e.outstanding);
  let totalLatencyMs = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const endpoint =
      policy === 'p2c-ewma' ? pickP2C(endpoints, 3, cost, random)! : roundRobin.next(endpoints, 3)!;
    endpoint.outstanding++;
    endpoint.served++;
    totalLatencyMs += endpoint.latencyMs;
    clock.setTimer(endpoint.latencyMs, () => {
      endpoint.ewma.observe(endpoint.latencyMs);
      endpoint.outstanding--;
    });
    await clock.advance(ARRIVAL_EVERY_MS);
  }
  return { shares: endpoints.map((e) => e.served / REQUESTS), meanLatencyMs: totalLatencyMs / REQUESTS };
}

describe('P2C over peak EWMA against round robin', () => {
  it('sends clearly less traffic to an endpoint 50 ms slower', async () => {
    const roundRobin = await simulate('round-robin');
    const p2c = await simulate('p2c-ewma');
    expect(roundRobin.shares[2]).toBeCloseTo(1 / 3, 3);
    // The slow endpoint still gets some traffic (its estimate decays and it is retried) but little.
    expect(p2c.shares[2]).toBeGreaterThan(0);
    expect(p2c.shares[2]).toBeLessThan(0.1);
    expect(p2c.shares[2]! * 4).toBeLessThan(roundRobin.shares[2]!);
    // The fast two share the rest about evenly.
    expect(Math.abs(p2c.shares[0]! - p2c.shares[1]!)).toBeLessThan(0.1);
    expect(p2c.meanLatencyMs).toBeLessThan(roundRobin.meanLatencyMs / 2);
  });
});
