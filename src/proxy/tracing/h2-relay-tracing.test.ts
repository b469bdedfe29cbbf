// The per-stream HTTP/2 relay with tracing: a SERVER span per stream, child of the caller's
// traceparent, whose ID the app receives as its parent.
import { createServer as createH2Server, connect as h2connect } from 'node:http2';
import type { Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../spiffe/clock.js';
import {
  CLIENT_ID,
  cleanups,
  listen,
  RecordingAuthorizer,
  SERVER_ID,
  startPair,
  useProxyTestHarness,
} from '../pair.test-support.js';
import { IdSource } from './ids.js';
import { createRequestTracer } from './request-tracer.js';
import { ParentBasedSampler } from './sampler.js';
import { type FinishedSpan, SPAN_KIND_SERVER, type SpanOrigin } from './span.js';

useProxyTestHarness();

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

describe('HTTP/2 per-stream relay with tracing', () => {
  it('records a SERVER span per stream and sends its ID to the app as the parent', async () => {
    const seen: Array<Record<string, unknown>> = [];
    const h2 = createH2Server();
    h2.on('stream', (stream, headers) => {
      seen.push({ ...headers });
      stream.respond({ ':status': String(headers[':path']).startsWith('/fail') ? 503 : 200 });
      stream.end('ok');
    });
    const sessions = new Set<{ destroy(): void }>();
    h2.on('session', (session) => sessions.add(session));
    const appPort = await listen(h2 as unknown as Server);
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const session of sessions) session.destroy();
          h2.close(() => resolve());
        }),
    );
    const spans: FinishedSpan[] = [];
    const tracer = createRequestTracer({
      tracing: {
        sampler: new ParentBasedSampler(1),
        ids: new IdSource(),
        origin: { resource: {}, instrumentationScope: { name: 'test' } } as unknown as SpanOrigin,
        sink: { add: (span) => spans.push(span) },
        emitB3: false,
        emitB3Multi: false,
      },
      accessLog: null,
      clock: systemClock,
    });
    const pair = await startPair({
      protocol: 'http2',
      appPort,
      authorizer: new RecordingAuthorizer(() => false, true),
      inboundTracer: tracer,
    });
    const session = h2connect(`http://127.0.0.1:${pair.outbound.address.port}`);
    cleanups.push(() => void session.destroy());
    const call = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': `${path}?q=1`, traceparent: `00-${TRACE}-${CALLER_SPAN}-01` });
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', () => {});
        req.on('end', () => resolve(status));
        req.on('error', reject);
        req.end();
      });

    expect(await call('/orders')).toBe(200);
    expect(await call('/fail')).toBe(503);
    await expect.poll(() => spans.length).toBe(2);
    const [ok, failed] = spans;
    expect(ok!.kind).toBe(SPAN_KIND_SERVER);
    expect(ok!.traceId).toBe(TRACE);
    expect(ok!.parentSpanContext?.spanId).toBe(CALLER_SPAN);
    expect(seen[0]!.traceparent).toBe(`00-${TRACE}-${ok!.spanId}-01`);
    expect(ok!.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/orders',
      'http.response.status_code': 200,
      'sigil.source_id': CLIENT_ID,
      'sigil.destination_id': SERVER_ID,
    });
    expect(ok!.status.code).toBe(0);
    expect(failed!.status.code).toBe(2);
    expect(failed!.attributes['http.response.status_code']).toBe(503);
  });
});
