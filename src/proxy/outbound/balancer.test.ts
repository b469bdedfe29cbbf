import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import type { ProxyError } from '../errors.js';
import { PeakEwma } from '../resilience/balance/ewma.js';
import type { ExchangeHandler } from '../resilience/exchange.js';
import { recordingHandler, testRequest } from '../resilience/exchange.test-support.js';
import { OutlierDetector } from '../resilience/outlier.js';
import { Balancer, type BalancerOptions, SERVICE_CIRCUIT } from './balancer.js';
import type { Endpoint, EndpointSet } from './endpoints.js';

/** Endpoints whose pool records dispatches; enough of Endpoint for the balancer. */
function fakeEndpoints(clock: ManualClock, count: number) {
  const dispatched: { endpoint: number; handler: ExchangeHandler }[] = [];
  const list = Array.from({ length: count }, (_, i) => {
    const endpoint = {
      label: `10.0.0.${i}:8443`,
      outstanding: 0,
      addedAtMs: clock.nowMs() - 60_000,
      ewma: new PeakEwma(10_000, clock),
      dispatcher: {
        dispatch: (_opts: unknown, handler: ExchangeHandler) => {
          dispatched.push({ endpoint: i, handler });
          handler.onConnect(() => {});
          return true;
        },
      },
    };
    return endpoint as unknown as Endpoint;
  });
  return { set: { list } as unknown as EndpointSet, list, dispatched };
}

function balancer(clock: ManualClock, endpoints: EndpointSet, overrides: Partial<BalancerOptions> = {}) {
  return new Balancer({
    policy: 'round-robin',
    slowStartMs: 0,
    clock,
    random: Math.random,
    endpoints,
    outlier: null,
    circuit: null,
    onPick: () => {},
    onTryEnd: () => {},
    ...overrides,
  });
}

const OUTLIER = {
  consecutiveFailures: 2,
  failureRate: 0,
  minRequests: 20,
  windowMs: 30_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectedShare: 0.5,
};

describe('Balancer', () => {
  it('sends a retry to another endpoint than the previous try', () => {
    const clock = new ManualClock();
    const { set, dispatched } = fakeEndpoints(clock, 2);
    const send = balancer(clock, set).send;
    const request = testRequest();
    for (let i = 0; i < 6; i++) send(request, recordingHandler());
    const endpoints = dispatched.map((d) => d.endpoint);
    for (let i = 1; i < endpoints.length; i++) expect(endpoints[i]).not.toBe(endpoints[i - 1]);
  });

  it('ejects an endpoint after consecutive 5xx and keeps it out of the choice; 429 never ejects', () => {
    const clock = new ManualClock();
    const { set, list, dispatched } = fakeEndpoints(clock, 2);
    const outlier = new OutlierDetector<Endpoint>(OUTLIER, clock);
    outlier.setEndpoints(list);
    const send = balancer(clock, set, { outlier }).send;
    const answer = (status: number) => {
      const last = dispatched.at(-1)!;
      last.handler.onHeaders(status, [], () => {}, '');
      last.handler.onComplete(null);
      return last.endpoint;
    };
    for (let i = 0; i < 8; i++) {
      send(testRequest(), recordingHandler());
      answer(dispatched.at(-1)!.endpoint === 0 ? 429 : 503);
    }
    expect(outlier.stateOf(list[0]!).state).toBe('healthy');
    expect(outlier.stateOf(list[1]!).state).toBe('ejected');
    const before = dispatched.length;
    for (let i = 0; i < 4; i++) send(testRequest(), recordingHandler());
    expect(dispatched.slice(before).map((d) => d.endpoint)).toEqual([0, 0, 0, 0]);
  });

  it('opens the service circuit on its failure rate, even with one endpoint, and closes it on a good probe', async () => {
    const clock = new ManualClock();
    const one = fakeEndpoints(clock, 1);
    // Outlier detection never ejects the only endpoint (share 0.5 of 1 is none): the circuit decides.
    const outlier = new OutlierDetector<Endpoint>(OUTLIER, clock);
    outlier.setEndpoints(one.list);
    const circuit = new OutlierDetector<typeof SERVICE_CIRCUIT>(
      { ...OUTLIER, consecutiveFailures: 0, failureRate: 0.5, minRequests: 4, maxEjectedShare: 1 },
      clock,
    );
    circuit.setEndpoints([SERVICE_CIRCUIT]);
    const send = balancer(clock, one.set, { outlier, circuit }).send;
    for (let i = 0; i < 4; i++) {
      send(testRequest(), recordingHandler());
      one.dispatched.at(-1)!.handler.onError(new Error('reset'));
    }
    expect(outlier.stateOf(one.list[0]!).state).toBe('healthy');
    const open = recordingHandler();
    send(testRequest(), open);
    expect((open.error as ProxyError).reason).toBe('circuit-open');
    expect(one.dispatched).toHaveLength(4);

    await clock.advance(OUTLIER.baseEjectionMs);
    send(testRequest(), recordingHandler());
    const whileProbing = recordingHandler();
    send(testRequest(), whileProbing);
    expect((whileProbing.error as ProxyError).reason).toBe('circuit-open');
    const probe = one.dispatched.at(-1)!.handler;
    probe.onHeaders(200, [], () => {}, '');
    probe.onComplete(null);
    send(testRequest(), recordingHandler());
    expect(one.dispatched).toHaveLength(6);
  });

  it('answers no-healthy-endpoint when the service has no endpoints', () => {
    const clock = new ManualClock();
    const none = recordingHandler();
    balancer(clock, fakeEndpoints(clock, 0).set).send(testRequest(), none);
    expect((none.error as ProxyError).reason).toBe('no-healthy-endpoint');
  });

  it('counts a try the caller abandoned against nobody', () => {
    const clock = new ManualClock();
    const { set, list, dispatched } = fakeEndpoints(clock, 1);
    const outlier = new OutlierDetector<Endpoint>({ ...OUTLIER, consecutiveFailures: 1 }, clock);
    outlier.setEndpoints(list);
    const send = balancer(clock, set, { outlier }).send;
    const caller = recordingHandler();
    send(testRequest(), caller);
    caller.abort!(new Error('client left'));
    dispatched[0]!.handler.onError(new Error('aborted'));
    expect(outlier.stateOf(list[0]!).state).toBe('healthy');
    expect(list[0]!.outstanding).toBe(0);
  });
});
