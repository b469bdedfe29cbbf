import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { AccessLog } from './access-log.js';
import { IdSource } from './ids.js';
import { createRequestTracer, type SpanSink } from './request-tracer.js';
import { ParentBasedSampler } from './sampler.js';
import { type FinishedSpan, SPAN_KIND_CLIENT, SPAN_KIND_SERVER, type SpanOrigin } from './span.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const ORIGIN = { resource: {}, instrumentationScope: { name: 'test' } } as unknown as SpanOrigin;

function setup(
  options: { ratio?: number; b3?: boolean; b3Multi?: boolean; log?: boolean; tracing?: boolean } = {},
) {
  const spans: FinishedSpan[] = [];
  const lines: string[] = [];
  const sink: SpanSink = { add: (span) => spans.push(span) };
  let nowMs = 0;
  const clock = new ManualClock(1_700_000_000_000);
  const tracer = createRequestTracer({
    tracing:
      options.tracing === false
        ? null
        : {
            sampler: new ParentBasedSampler(options.ratio ?? 1),
            ids: new IdSource(),
            origin: ORIGIN,
            sink,
            emitB3: options.b3 ?? false,
            emitB3Multi: options.b3Multi ?? false,
          },
    accessLog: options.log ? new AccessLog({ write: (line) => lines.push(line) }, 1, () => 0.5) : null,
    clock,
    monotonicMs: () => nowMs,
  });
  return { tracer, spans, lines, advance: (ms: number) => (nowMs += ms) };
}

const value = (headers: string[], name: string) => {
  const found: string[] = [];
  for (let i = 0; i < headers.length; i += 2)
    if (headers[i]!.toLowerCase() === name) found.push(headers[i + 1]!);
  return found;
};

describe('RequestTracer', () => {
  it('continues the caller trace: a CLIENT span child of the caller, its own ID sent on', () => {
    const { tracer, spans, advance } = setup();
    const headers = ['Host', 'b', 'TraceParent', `00-${TRACE}-${CALLER_SPAN}-01`, 'tracestate', 'v=1'];
    const traced = tracer.startOutbound('out', 'GET', '/orders?secret=1', headers, 'spiffe://td/a', 'orders');
    const sent = value(headers, 'traceparent');
    expect(sent).toHaveLength(1);
    const [, traceId, spanId, flags] = sent[0]!.split('-');
    expect(traceId).toBe(TRACE);
    expect(spanId).not.toBe(CALLER_SPAN);
    expect(flags).toBe('01');
    expect(value(headers, 'tracestate')).toEqual(['v=1']);
    expect(value(headers, 'host')).toEqual(['b']);
    advance(12.5);
    traced!.end(200, null, {
      route: 'default/orders rule 0',
      attempt: 2,
      lastEndpoint: { label: '127.0.0.1:9001', config: { serverIds: ['spiffe://td/b'] } },
    });
    expect(spans).toHaveLength(1);
    const span = spans[0]!;
    expect(span.kind).toBe(SPAN_KIND_CLIENT);
    expect(span.spanContext()).toMatchObject({ traceId: TRACE, spanId });
    expect(span.spanContext().traceState?.serialize()).toBe('v=1');
    expect(span.parentSpanContext?.spanId).toBe(CALLER_SPAN);
    expect(span.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/orders',
      'http.response.status_code': 200,
      'sigil.source_id': 'spiffe://td/a',
      'sigil.destination_id': 'spiffe://td/b',
      'sigil.route': 'default/orders rule 0',
      'sigil.attempts': 2,
      'server.address': '127.0.0.1',
      'server.port': 9001,
    });
    expect(span.status.code).toBe(0);
    expect(span.startTime).toEqual([1_700_000_000, 0]);
    expect(span.endTime).toEqual([1_700_000_000, 12_500_000]);
  });

  it('starts a trace when none came, and marks 5xx and proxy errors as errors', () => {
    const { tracer, spans } = setup();
    const headers: string[] = [];
    tracer.startInbound('in', 'POST', '/x', headers, null, 'spiffe://td/b')!.end(503, null, null);
    expect(value(headers, 'traceparent')[0]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(spans[0]!.kind).toBe(SPAN_KIND_SERVER);
    expect(spans[0]!.parentSpanContext).toBeUndefined();
    expect(spans[0]!.status).toEqual({ code: 2, message: 'HTTP 503' });
    tracer.startInbound('in', 'GET', '/x', [], null, 'id')!.end(404, null, null);
    expect(spans[1]!.status.code).toBe(0);
    const err = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    tracer
      .startOutbound('out', 'GET', '/', [], 'a', 'svc')!
      .end(502, err, { route: null, attempt: 1, lastEndpoint: undefined });
    expect(spans[2]!.status.code).toBe(2);
    expect(spans[2]!.attributes['error.type']).toEqual(expect.any(String));
  });

  it('unsampled: no span, the caller traceparent passes untouched, and a new trace still gets one (flag 00)', () => {
    const { tracer, spans } = setup({ ratio: 0 });
    const incoming = `00-${TRACE}-${CALLER_SPAN}-00`;
    const headers = ['traceparent', incoming];
    expect(tracer.startOutbound('out', 'GET', '/', headers, 'a', 's')).toBeNull();
    expect(headers).toEqual(['traceparent', incoming]);
    const fresh: string[] = [];
    expect(tracer.startOutbound('out', 'GET', '/', fresh, 'a', 's')).toBeNull();
    expect(value(fresh, 'traceparent')[0]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(spans).toHaveLength(0);
  });

  it('reads B3 and answers in W3C, and B3 too when asked', () => {
    const { tracer, spans } = setup({ b3: true });
    const headers = ['X-B3-TraceId', TRACE, 'X-B3-SpanId', CALLER_SPAN, 'X-B3-Sampled', '1'];
    tracer.startOutbound('out', 'GET', '/', headers, 'a', 's')!.end(200, null, null);
    const spanId = spans[0]!.spanId;
    expect(value(headers, 'traceparent')).toEqual([`00-${TRACE}-${spanId}-01`]);
    expect(value(headers, 'b3')).toEqual([`${TRACE}-${spanId}-1`]);
    // Stale X-B3-* would name the caller's span as the parent: replaced.
    expect(value(headers, 'x-b3-spanid')).toEqual([]);
    expect(spans[0]!.parentSpanContext?.spanId).toBe(CALLER_SPAN);

    const multi = setup({ b3Multi: true });
    const h2: Record<string, string | string[] | undefined> = {};
    multi.tracer
      .startStream('in', { ':method': 'GET', ':path': '/s', b3: `${TRACE}-${CALLER_SPAN}-1` }, h2, 'c', 'd')!
      .end(200, null, null);
    const id = multi.spans[0]!.spanId;
    expect(h2).toMatchObject({
      traceparent: `00-${TRACE}-${id}-01`,
      'x-b3-traceid': TRACE,
      'x-b3-spanid': id,
      'x-b3-sampled': '1',
    });
  });

  it('follows an unsampled B3 decision without a trace ID: a new trace, not sampled', () => {
    const { tracer, spans } = setup({ ratio: 1 });
    const headers = ['b3', '0'];
    expect(tracer.startOutbound('out', 'GET', '/', headers, 'a', 's')).toBeNull();
    expect(value(headers, 'traceparent')[0]).toMatch(/-00$/);
    expect(spans).toHaveLength(0);
  });

  it('writes an access log line, JSON-escaped, with the trace ID even with tracing off', () => {
    const { tracer, lines, advance } = setup({ tracing: false, log: true });
    const headers = ['traceparent', `00-${TRACE}-${CALLER_SPAN}-01`];
    const traced = tracer.startInbound(
      'in',
      'GET',
      '/a"\n{"forged":1}?q=secret',
      headers,
      'spiffe://td/a',
      'spiffe://td/b',
    );
    // Tracing off: the headers are not touched.
    expect(headers).toEqual(['traceparent', `00-${TRACE}-${CALLER_SPAN}-01`]);
    advance(3);
    traced!.end(201, null, null);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    expect(lines[0]!.trimEnd().includes('\n')).toBe(false);
    expect(JSON.parse(lines[0]!)).toEqual({
      time: '2023-11-14T22:13:20.000Z',
      listener: 'in',
      direction: 'inbound',
      method: 'GET',
      path: '/a"\n{"forged":1}',
      status: 201,
      duration_ms: 3,
      source_id: 'spiffe://td/a',
      destination_id: 'spiffe://td/b',
      trace_id: TRACE,
      route: null,
      attempts: 1,
      error: null,
    });
  });

  it('does nothing at all with neither spans nor log lines due', () => {
    const { tracer } = setup({ tracing: false, log: false });
    const headers = ['a', 'b'];
    expect(tracer.startOutbound('out', 'GET', '/', headers, 'a', 's')).toBeNull();
    expect(headers).toEqual(['a', 'b']);
  });
});
