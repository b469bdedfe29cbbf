import { describe, expect, it } from 'vitest';
import {
  boundTracestate,
  emptyTraceHeaders,
  extractTrace,
  formatB3Single,
  formatTraceparent,
  parseB3Single,
  parseTraceparent,
  type TraceHeaders,
} from './context.js';
import { IdSource } from './ids.js';
import { ParentBasedSampler, traceIdBucket } from './sampler.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const headers = (fields: Partial<TraceHeaders>): TraceHeaders => ({ ...emptyTraceHeaders(), ...fields });

describe('traceparent', () => {
  it('parses version 00 and reads the sampled flag', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toEqual({
      traceId: TRACE,
      parentSpanId: SPAN,
      sampled: true,
    });
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.sampled).toBe(false);
    // Other flag bits are not the sampled bit.
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-02`)?.sampled).toBe(false);
  });

  it.each([
    ['all-zero trace ID', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['all-zero parent ID', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['upper-case hex', `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ['bad hex', `00-${TRACE.slice(0, 31)}g-${SPAN}-01`],
    ['short trace ID', `00-${TRACE.slice(1)}-${SPAN}-01`],
    ['long parent ID', `00-${TRACE}-${SPAN}0-01`],
    ['version 00 with more fields', `00-${TRACE}-${SPAN}-01-extra`],
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['bad flags', `00-${TRACE}-${SPAN}-0x`],
    ['wrong separators', `00_${TRACE}_${SPAN}_01`],
    ['empty', ''],
  ])('refuses %s', (_what, value) => {
    expect(parseTraceparent(value)).toBeNull();
  });

  it('reads a future version by the spec: its first fields as 00, anything after a dash ignored', () => {
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01-what-the-future-holds`)).toEqual({
      traceId: TRACE,
      parentSpanId: SPAN,
      sampled: true,
    });
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01`)?.traceId).toBe(TRACE);
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01x`)).toBeNull();
  });

  it('formats version 00', () => {
    expect(formatTraceparent(TRACE, SPAN, true)).toBe(`00-${TRACE}-${SPAN}-01`);
    expect(formatTraceparent(TRACE, SPAN, false)).toBe(`00-${TRACE}-${SPAN}-00`);
  });
});

describe('tracestate', () => {
  it('passes a valid list on, without empty members', () => {
    expect(boundTracestate('rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,,')).toBe(
      'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
    );
    expect(boundTracestate('tenant@vendor=x')).toBe('tenant@vendor=x');
  });

  it('refuses more than 32 members, repeated keys and malformed members', () => {
    const members = Array.from({ length: 33 }, (_, i) => `k${i}=v`);
    expect(boundTracestate(members.slice(0, 32).join(','))).not.toBeNull();
    expect(boundTracestate(members.join(','))).toBeNull();
    expect(boundTracestate('a=1,a=2')).toBeNull();
    expect(boundTracestate('Upper=1')).toBeNull();
    expect(boundTracestate('a=with,b')).toBeNull();
    expect(boundTracestate('novalue')).toBeNull();
    expect(boundTracestate('a=x\ny')).toBeNull();
  });

  it('keeps at most 512 characters: long members first, then from the end', () => {
    const long = `long=${'x'.repeat(200)}`;
    const small = Array.from({ length: 20 }, (_, i) => `k${i}=${'v'.repeat(20)}`);
    const kept = boundTracestate([small[0], long, ...small.slice(1)].join(','))!;
    expect(kept.length).toBeLessThanOrEqual(512);
    expect(kept).not.toContain('long=');
    expect(kept.startsWith('k0=')).toBe(true);
    expect(kept.split(',').length).toBe(20);
    const many = Array.from({ length: 30 }, (_, i) => `k${i}=${'v'.repeat(30)}`).join(',');
    const cut = boundTracestate(many)!;
    expect(cut.length).toBeLessThanOrEqual(512);
    expect(many.startsWith(cut)).toBe(true);
  });
});

describe('B3', () => {
  it('parses the single header with 128- and 64-bit trace IDs, flags and parent', () => {
    expect(parseB3Single(`${TRACE}-${SPAN}-1`)).toMatchObject({
      traceId: TRACE,
      parentSpanId: SPAN,
      sampled: true,
    });
    expect(parseB3Single(`a3ce929d0e0e4736-${SPAN}-0-05e3ac9a4f6e3b90`)).toMatchObject({
      traceId: `0000000000000000a3ce929d0e0e4736`,
      sampled: false,
    });
    expect(parseB3Single(`${TRACE}-${SPAN}`)?.sampled).toBeNull();
    expect(parseB3Single(`${TRACE}-${SPAN}-d`)?.sampled).toBe(true);
  });

  it('reads a bare decision: 0, 1 and d (debug)', () => {
    expect(parseB3Single('0')).toMatchObject({ traceId: '', sampled: false });
    expect(parseB3Single('1')).toMatchObject({ traceId: '', sampled: true });
    expect(parseB3Single('d')).toMatchObject({ traceId: '', sampled: true });
    expect(parseB3Single('x')).toBeNull();
  });

  it('refuses malformed single headers', () => {
    for (const bad of [
      `${TRACE}`,
      `${TRACE}-${SPAN}-2`,
      `${TRACE}-xyz-1`,
      `${'0'.repeat(32)}-${SPAN}-1`,
      `${TRACE.slice(2)}-${SPAN}-1`,
      `${TRACE}-${SPAN}-1-zz`,
    ])
      expect(parseB3Single(bad)).toBeNull();
  });

  it('parses the multi-header form, with X-B3-Flags: 1 as debug', () => {
    expect(extractTrace(headers({ xB3TraceId: TRACE, xB3SpanId: SPAN, xB3Sampled: '1' }))).toMatchObject({
      traceId: TRACE,
      parentSpanId: SPAN,
      sampled: true,
    });
    expect(
      extractTrace(headers({ xB3TraceId: TRACE, xB3SpanId: SPAN, xB3Flags: '1', xB3Sampled: '0' }))?.sampled,
    ).toBe(true);
    expect(extractTrace(headers({ xB3TraceId: TRACE, xB3SpanId: SPAN }))?.sampled).toBeNull();
    expect(extractTrace(headers({ xB3Sampled: '0' }))).toMatchObject({ traceId: '', sampled: false });
    expect(extractTrace(headers({ xB3TraceId: TRACE }))).toBeNull();
  });

  it('formats the single header', () => {
    expect(formatB3Single(TRACE, SPAN, true)).toBe(`${TRACE}-${SPAN}-1`);
  });
});

describe('precedence', () => {
  const other = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
  it('takes traceparent over b3 over X-B3-*', () => {
    const all = headers({
      traceparent: `00-${TRACE}-${SPAN}-01`,
      tracestate: 'a=1',
      b3: `${other}-${SPAN}-1`,
      xB3TraceId: 'b'.repeat(32),
      xB3SpanId: SPAN,
    });
    expect(extractTrace(all)).toMatchObject({ traceId: TRACE, tracestate: 'a=1', isW3c: true });
    expect(extractTrace({ ...all, traceparent: undefined })).toMatchObject({
      traceId: other,
      tracestate: null,
    });
    expect(extractTrace({ ...all, traceparent: undefined, b3: undefined })?.traceId).toBe('b'.repeat(32));
  });

  it('falls back when the winner is malformed or repeated', () => {
    expect(extractTrace(headers({ traceparent: 'garbage', b3: `${other}-${SPAN}-1` }))?.traceId).toBe(other);
    expect(extractTrace(headers({ traceparent: null, b3: `${other}-${SPAN}-1` }))?.traceId).toBe(other);
    expect(extractTrace(headers({ tracestate: 'a=1' }))).toBeNull();
  });
});

describe('IDs', () => {
  it('draws IDs from the injected bytes, in batches, never all zero', () => {
    let fills = 0;
    let counter = 0;
    const ids = new IdSource((buffer) => {
      fills++;
      // Every other 8-byte group is zero, which must be skipped; the others count up.
      const view = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.length);
      view.fill(0);
      for (let i = 8; i + 8 <= view.length; i += 16) view.writeUInt32BE(++counter, i + 4);
    });
    const spans = Array.from({ length: 200 }, () => ids.spanId());
    const traces = Array.from({ length: 50 }, () => ids.traceId());
    for (const id of spans) expect(id).toMatch(/^[0-9a-f]{16}$/);
    for (const id of traces) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(spans).not.toContain('0'.repeat(16));
    expect(new Set(spans).size).toBe(200);
    expect(fills).toBeLessThan(10);
  });
});

describe('sampler', () => {
  it('follows the parent, and decides a new trace from its ID as OTel TraceIdRatioBased does', () => {
    const half = new ParentBasedSampler(0.5);
    expect(half.isSampled(TRACE, true)).toBe(true);
    expect(half.isSampled(TRACE, false)).toBe(false);
    expect(new ParentBasedSampler(0).isSampled(TRACE, null)).toBe(false);
    expect(new ParentBasedSampler(1).isSampled('ffffffff'.repeat(4).replace(/f{8}$/, '00000000'), null)).toBe(
      true,
    );
    // XOR of the four words: 0x4bf92f35 ^ 0x77b34da6 ^ 0xa3ce929d ^ 0x0e0e4736.
    expect(traceIdBucket(TRACE)).toBe((0x4bf92f35 ^ 0x77b34da6 ^ 0xa3ce929d ^ 0x0e0e4736) >>> 0);
    const bound = Math.floor(0.5 * 0xffffffff);
    expect(half.isSampled(TRACE, null)).toBe(traceIdBucket(TRACE) < bound);
  });

  it('samples close to the ratio over many new traces', () => {
    const ids = new IdSource();
    const sampler = new ParentBasedSampler(0.1);
    let sampled = 0;
    for (let i = 0; i < 20_000; i++) if (sampler.isSampled(ids.traceId(), null)) sampled++;
    expect(sampled / 20_000).toBeGreaterThan(0.09);
    expect(sampled / 20_000).toBeLessThan(0.11);
  });
});
