import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { ProxyError } from '../errors.js';
import { concurrencyLayer, InFlight } from './concurrency.js';
import { fakeNext, recordingHandler, testRequest } from './exchange.test-support.js';
import { requestTimeoutLayer, tryTimeoutLayer } from './timeout.js';

describe('requestTimeoutLayer', () => {
  it('answers 504 timeout at the deadline and aborts the try, ignoring a late response', async () => {
    const clock = new ManualClock();
    const next = fakeNext();
    const handler = recordingHandler();
    requestTimeoutLayer(clock)(next.send)(testRequest({}, { deadlineAtMs: clock.nowMs() + 100 }), handler);
    await clock.advance(99);
    expect(handler.error).toBeNull();
    await clock.advance(1);
    expect((handler.error as ProxyError).reason).toBe('timeout');
    expect((next.tries[0]!.aborted as ProxyError).reason).toBe('timeout');
    next.tries[0]!.respond(200);
    expect(handler.status).toBeNull();
  });

  it('calls a caller-propagated deadline deadline-exceeded, and refuses one already past without a try', async () => {
    const clock = new ManualClock();
    const next = fakeNext();
    const layer = requestTimeoutLayer(clock)(next.send);
    const late = recordingHandler();
    layer(testRequest({}, { deadlineAtMs: clock.nowMs(), deadlineFromCaller: true }), late);
    expect((late.error as ProxyError).reason).toBe('deadline-exceeded');
    expect(next.tries).toHaveLength(0);
    const capped = recordingHandler();
    layer(testRequest({}, { deadlineAtMs: clock.nowMs() + 50, deadlineFromCaller: true }), capped);
    await clock.advance(50);
    expect((capped.error as ProxyError).reason).toBe('deadline-exceeded');
  });

  it('passes a request with no deadline straight on and leaves no timer behind when the response completes', async () => {
    const clock = new ManualClock();
    const next = fakeNext();
    const layer = requestTimeoutLayer(clock)(next.send);
    const handler = recordingHandler();
    layer(testRequest(), handler);
    expect(next.tries[0]!.handler).toBe(handler);
    const timed = recordingHandler();
    layer(testRequest({}, { deadlineAtMs: clock.nowMs() + 100 }), timed);
    next.tries[1]!.respond(200, {}, 'ok');
    expect(clock.pendingTimers).toBe(0);
    expect(timed.body).toBe('ok');
  });
});

describe('tryTimeoutLayer', () => {
  it('bounds each try by the smaller of its own timeout and what is left of the deadline', async () => {
    const clock = new ManualClock();
    const next = fakeNext();
    const layer = tryTimeoutLayer(clock, 100)(next.send);
    const own = recordingHandler();
    layer(testRequest({}, { deadlineAtMs: clock.nowMs() + 1_000 }), own);
    const capped = recordingHandler();
    layer(testRequest({}, { deadlineAtMs: clock.nowMs() + 30 }), capped);
    await clock.advance(30);
    expect((capped.error as ProxyError).reason).toBe('timeout');
    expect(own.error).toBeNull();
    await clock.advance(70);
    expect((own.error as ProxyError).reason).toBe('timeout');
  });
});

describe('concurrencyLayer', () => {
  it('answers 503 overloaded at once past the limit and frees the slot however a request ends', () => {
    const inFlight = new InFlight();
    const hits: string[] = [];
    const next = fakeNext();
    const layer = concurrencyLayer(
      { maxConcurrent: 2, maxPending: 100, maxConnections: 100 },
      inFlight,
      (l) => hits.push(l),
    )(next.send);
    layer(testRequest(), recordingHandler());
    layer(testRequest(), recordingHandler());
    const third = recordingHandler();
    layer(testRequest(), third);
    expect((third.error as ProxyError).reason).toBe('overloaded');
    expect(hits).toEqual(['concurrent']);
    expect(next.tries).toHaveLength(2);
    next.tries[0]!.respond(200);
    next.tries[1]!.fail(new Error('reset'));
    expect(inFlight.count).toBe(0);
    layer(testRequest(), recordingHandler());
    expect(next.tries).toHaveLength(3);
  });

  it('counts requests waiting for a connection against max_pending', () => {
    const inFlight = new InFlight();
    const hits: string[] = [];
    const layer = concurrencyLayer({ maxConcurrent: 100, maxPending: 1, maxConnections: 1 }, inFlight, (l) =>
      hits.push(l),
    )(fakeNext().send);
    layer(testRequest(), recordingHandler());
    layer(testRequest(), recordingHandler());
    const third = recordingHandler();
    layer(testRequest(), third);
    expect(third.error).toBeInstanceOf(ProxyError);
    expect(hits).toEqual(['pending']);
  });
});
