import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { seededRandom } from '../../spiffe/seeded-random.test-support.js';
import type { ProxyRequest } from '../resilience/exchange.js';
import { recordingHandler, testRequest } from '../resilience/exchange.test-support.js';
import { MAX_MIRRORS_IN_FLIGHT, shadowHostValue } from './mirror.js';
import { OutboundRouter } from './router.js';
import { ANY_PATH, fakeService, rule, table, testMetrics } from './router.test-support.js';

function setup(share = 1, random = seededRandom(3)) {
  const clock = new ManualClock();
  const services = new Map(['v1', 'shadow'].map((name) => [name, fakeService(name, 2_000)]));
  const { metrics, registry } = testMetrics();
  const router = new OutboundRouter({ services, random, clock, metrics });
  router.setTable(
    table('stable', [
      { match: ANY_PATH, rule: rule({ v1: 1 }, { mirrors: [{ service: 'shadow', share }] }) },
    ]),
  );
  const send = (overrides: Partial<ProxyRequest> = {}) => {
    const handler = recordingHandler();
    const decision = router.decide(router.routesOf('stable')!, 'GET', '/', []);
    if (decision.kind !== 'send') throw new Error('expected a send');
    const request = testRequest({ headers: ['host', 'stable:8080'], ...overrides });
    router.send(decision, request, handler);
    return handler;
  };
  const mirrored = async (outcome: string) => {
    const m = new RegExp(
      `sigil_proxy_mirror_requests_total\\{service="shadow",outcome="${outcome}"\\} (\\d+)`,
    ).exec(await registry.metrics());
    return m === null ? 0 : Number(m[1]);
  };
  return { clock, send, v1: services.get('v1')!, shadow: services.get('shadow')!, mirrored };
}

describe('RequestMirror', () => {
  it('sends a marked copy to the shadow, once, after the request itself', async () => {
    const { send, v1, shadow, mirrored, clock } = setup();
    send();
    expect(v1.tries).toHaveLength(1);
    expect(shadow.tries).toHaveLength(1);
    const copy = shadow.tries[0]!.request;
    expect(copy.headers).toEqual([
      'host',
      'stable-shadow:8080',
      'x-sigil-mirror',
      '1',
      'x-sigil-deadline',
      String(clock.nowMs() + 2_000),
    ]);
    // The upstream's request is not marked, and the copy's context is its own.
    expect(v1.tries[0]!.request.headers).toEqual(['host', 'stable:8080']);
    expect(copy.context).not.toBe(v1.tries[0]!.request.context);
    expect(shadow.stacked[0]!.retry?.maxAttempts).toBe(1);
    expect(await mirrored('sent')).toBe(1);
  });

  it('never lets the shadow’s answer or failure reach the caller', () => {
    const { send, v1, shadow } = setup();
    const handler = send();
    shadow.tries[0]!.fail(new Error('shadow down'));
    expect(handler.error).toBeNull();
    v1.tries[0]!.respond(200, {}, 'ok');
    shadow.tries.length = 0;
    const second = send();
    shadow.tries[0]!.respond(500, {}, 'shadow body');
    expect(second.status).toBeNull();
    expect(handler).toMatchObject({ status: 200, body: 'ok', completed: true });
  });

  it('mirrors the configured share of requests', () => {
    const { send, shadow, v1 } = setup(0.25, seededRandom(11));
    for (let i = 0; i < 4_000; i++) {
      send();
      // Each copy answered at once: none is dropped for the bound in flight.
      shadow.tries.at(-1)?.respond(200);
    }
    expect(v1.tries).toHaveLength(4_000);
    expect(Math.abs(shadow.tries.length / 4_000 - 0.25)).toBeLessThan(0.02);
  });

  it('drops copies beyond the bound in flight, and counts them', async () => {
    const { send, shadow, mirrored } = setup();
    for (let i = 0; i < MAX_MIRRORS_IN_FLIGHT + 10; i++) send();
    expect(shadow.tries).toHaveLength(MAX_MIRRORS_IN_FLIGHT);
    expect(await mirrored('dropped')).toBe(10);
    shadow.tries[0]!.respond(200);
    send();
    expect(shadow.tries).toHaveLength(MAX_MIRRORS_IN_FLIGHT + 1);
  });

  it('keeps a body up to 64 KiB for both, and sends a larger one upstream alone', async () => {
    const { send, v1, shadow, mirrored } = setup();
    const small = Buffer.alloc(60 * 1024, 1);
    send({ method: 'PUT', headers: ['content-length', String(small.length)], body: Readable.from([small]) });
    await new Promise((resolve) => setImmediate(resolve));
    expect(Buffer.isBuffer(v1.tries[0]!.request.body)).toBe(true);
    expect(shadow.tries[0]!.request.body).toBe(v1.tries[0]!.request.body);
    expect((shadow.tries[0]!.request.body as Buffer).equals(small)).toBe(true);

    const large = Readable.from([Buffer.alloc(100 * 1024)]);
    send({ method: 'PUT', headers: ['content-length', String(100 * 1024)], body: large });
    expect(v1.tries[1]!.request.body).toBe(large);
    expect(shadow.tries).toHaveLength(1);
    // Unknown length (chunked) is not kept either.
    send({ method: 'POST', headers: ['transfer-encoding', 'chunked'], body: Readable.from(['x']) });
    expect(shadow.tries).toHaveLength(1);
    expect(await mirrored('too-large')).toBe(2);
  });

  it('puts -shadow after the host name, before any port', () => {
    expect(shadowHostValue('orders')).toBe('orders-shadow');
    expect(shadowHostValue('orders:8080')).toBe('orders-shadow:8080');
    expect(shadowHostValue('[::1]:80')).toBe('[::1]-shadow:80');
    expect(shadowHostValue('[::1]')).toBe('[::1]-shadow');
  });
});
