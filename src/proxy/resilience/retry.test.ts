import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import { ProxyError } from '../errors.js';
import { fakeNext, recordingHandler, testRequest } from './exchange.test-support.js';
import { retryLayer } from './retry.js';
import { RetryBudget } from './retry-budget.js';
import type { RetryPolicy } from './retry-policy.js';

const POLICY: RetryPolicy = {
  maxAttempts: 3,
  onStatuses: new Set([502, 503, 504]),
  nonIdempotent: false,
  backoff: { baseMs: 10, maxMs: 100 },
};

function setup(
  policy: RetryPolicy = POLICY,
  budgetOptions = { ratio: 0.2, minPerSecond: 10, windowMs: 10_000 },
) {
  const clock = new ManualClock();
  const next = fakeNext();
  const retries: string[] = [];
  let exhausted = 0;
  const budget = new RetryBudget(budgetOptions, clock);
  const send = retryLayer({
    policy,
    budget,
    clock,
    // Full jitter with random() = 0.5: half the exponential bound.
    random: () => 0.5,
    events: { onRetry: (reason) => retries.push(reason), onBudgetExhausted: () => exhausted++ },
  })(next.send);
  return { clock, next, send, retries, exhausted: () => exhausted };
}

const connectRefused = () => new SigilError('ERR_UNAVAILABLE', 'refused', { reason: 'connect' });

describe('retryLayer', () => {
  it('retries a 503 after backoff, drops the failed body and passes the success on, each try numbered', async () => {
    const { clock, next, send, retries } = setup();
    const handler = recordingHandler();
    send(testRequest(), handler);
    next.tries[0]!.respond(503, {}, 'busy');
    expect(next.tries).toHaveLength(1);
    await clock.advance(5);
    expect(next.tries).toHaveLength(2);
    next.tries[1]!.respond(200, {}, 'ok');
    expect(handler.status).toBe(200);
    expect(handler.body).toBe('ok');
    expect(retries).toEqual(['status-503']);
    expect(next.tries[1]!.request.headers).toEqual(['host', 'svc', 'x-sigil-attempt', '2']);
  });

  it('gives the last failure to the caller unaltered once tries run out', async () => {
    const { clock, next, send } = setup();
    const handler = recordingHandler();
    send(testRequest(), handler);
    next.tries[0]!.respond(503);
    await clock.advance(100);
    next.tries[1]!.respond(502);
    await clock.advance(100);
    next.tries[2]!.respond(503, {}, 'still busy');
    expect(next.tries).toHaveLength(3);
    expect(handler.status).toBe(503);
    expect(handler.body).toBe('still busy');
  });

  it('never retries a POST, even once; retries it with an Idempotency-Key or when the service allows any method', async () => {
    const plain = setup();
    const post = recordingHandler();
    plain.send(testRequest({ method: 'POST' }), post);
    plain.next.tries[0]!.fail(connectRefused());
    await plain.clock.advance(1_000);
    expect(plain.next.tries).toHaveLength(1);
    expect(post.error).toBeInstanceOf(SigilError);

    const keyed = setup();
    keyed.send(testRequest({ method: 'POST' }, { hasIdempotencyKey: true }), recordingHandler());
    keyed.next.tries[0]!.fail(connectRefused());
    await keyed.clock.advance(1_000);
    expect(keyed.next.tries).toHaveLength(2);

    const any = setup({ ...POLICY, nonIdempotent: true });
    any.send(testRequest({ method: 'POST' }), recordingHandler());
    any.next.tries[0]!.respond(503);
    await any.clock.advance(1_000);
    expect(any.next.tries).toHaveLength(2);
  });

  it('buffers a small body to send it again, and streams a 100 KiB one without retrying', async () => {
    const small = setup();
    const body = Buffer.alloc(1_000, 1);
    small.send(
      testRequest({
        method: 'PUT',
        headers: ['content-length', String(body.length)],
        body: Readable.from([body]),
      }),
      recordingHandler(),
    );
    await small.clock.advance(0);
    small.next.tries[0]!.respond(503);
    await small.clock.advance(1_000);
    expect(small.next.tries).toHaveLength(2);
    expect(small.next.tries[1]!.request.body).toEqual(body);

    const large = setup();
    const big = Readable.from([Buffer.alloc(100 * 1024)]);
    large.send(
      testRequest({ method: 'PUT', headers: ['content-length', String(100 * 1024)], body: big }),
      recordingHandler(),
    );
    expect(large.next.tries[0]!.request.body).toBe(big);
    large.next.tries[0]!.respond(503);
    await large.clock.advance(1_000);
    expect(large.next.tries).toHaveLength(1);
  });

  it('honours Retry-After on a 503, and does not retry when the wait would pass the deadline', async () => {
    const { clock, next, send } = setup();
    send(testRequest({}, { deadlineAtMs: clock.nowMs() + 5_000 }), recordingHandler());
    next.tries[0]!.respond(503, { 'Retry-After': '2' });
    await clock.advance(1_999);
    expect(next.tries).toHaveLength(1);
    await clock.advance(1);
    expect(next.tries).toHaveLength(2);

    const late = recordingHandler();
    send(testRequest({}, { deadlineAtMs: clock.nowMs() + 1_000 }), late);
    next.tries[2]!.respond(503, { 'retry-after': '2' }, 'wait');
    expect(late.status).toBe(503);
    expect(late.body).toBe('wait');
  });

  it('sends the failure at once when the budget is empty, saying so for a failure without a response', async () => {
    const { clock, next, send, exhausted } = setup(POLICY, { ratio: 0, minPerSecond: 0.1, windowMs: 10_000 });
    send(testRequest(), recordingHandler());
    next.tries[0]!.fail(connectRefused());
    await clock.advance(100);
    expect(next.tries).toHaveLength(2);
    next.tries[1]!.respond(200);
    const second = recordingHandler();
    send(testRequest(), second);
    next.tries[2]!.fail(connectRefused());
    expect((second.error as ProxyError).reason).toBe('retry-budget-exhausted');
    expect(exhausted()).toBe(1);
  });

  it('in a call chain an outer sidecar retries, repeats only failures that never reached an app', async () => {
    const { clock, next, send } = setup();
    const scoped = recordingHandler();
    send(testRequest({}, { inRetryScope: true }), scoped);
    next.tries[0]!.respond(503);
    expect(scoped.status).toBe(503);
    // The forwarded field keeps its name as the app cased it; only its value counts the tries.
    send(
      testRequest({ headers: ['host', 'svc', 'X-Sigil-Attempt', '2'] }, { inRetryScope: true }),
      recordingHandler(),
    );
    next.tries[1]!.fail(connectRefused());
    await clock.advance(100);
    expect(next.tries).toHaveLength(3);
    expect(next.tries[2]!.request.headers).toEqual(['host', 'svc', 'X-Sigil-Attempt', '2']);
  });

  it('stops retrying when the caller aborts during the backoff, and never starts a retry past the deadline', async () => {
    const { clock, next, send } = setup({ ...POLICY, backoff: { baseMs: 1_000, maxMs: 1_000 } });
    const handler = recordingHandler();
    send(testRequest(), handler);
    next.tries[0]!.respond(503);
    handler.abort!(new Error('client left'));
    await clock.advance(5_000);
    expect(next.tries).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0);
    // The exchange ends for the layers above, which hold a slot or a timer for it.
    expect(handler.error?.message).toBe('client left');
  });

  it('retries a try that timed out but not the proxy’s own refusals', async () => {
    const { clock, next, send } = setup();
    send(testRequest(), recordingHandler());
    next.tries[0]!.fail(new ProxyError('timeout', 'slow'));
    await clock.advance(100);
    expect(next.tries).toHaveLength(2);
    const refused = recordingHandler();
    send(testRequest(), refused);
    next.tries[2]!.fail(new ProxyError('circuit-open', 'ejected'));
    await clock.advance(100);
    expect(next.tries).toHaveLength(3);
    expect((refused.error as ProxyError).reason).toBe('circuit-open');
  });
});
