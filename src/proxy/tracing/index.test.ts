// startObservability with its real parts: OpenTelemetry's exporter sending to a receiver that
// decodes with OpenTelemetry's protobuf definitions, and the access log appended to a file.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { OTLP_SPAN_KIND, startOtlpReceiver } from '../../../test/support/otlp-receiver.js';
import { systemClock } from '../../spiffe/clock.js';
import { startObservability } from './index.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const logger = { debug() {}, info() {}, warn() {}, error() {} };
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('startObservability', () => {
  it('exports spans over OTLP/HTTP protobuf and writes access log lines to a file; close flushes both', async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const dir = mkdtempSync(path.join(tmpdir(), 'sigil-access-log-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const registry = new Registry();
    const observability = await startObservability(
      {
        collector: receiver.url,
        sampleRatio: 1,
        serviceName: 'unit-sidecar',
        propagation: ['w3c'],
        batch: { maxQueue: 100, maxBatch: 10, intervalMs: 60_000, exportTimeoutMs: 5_000 },
      },
      { sampleRatio: 1, path: path.join(dir, 'access.jsonl') },
      { registry, logger, clock: systemClock, random: () => 0, spiffeId: 'spiffe://td/unit' },
    );
    const headers = ['traceparent', `00-${TRACE}-00f067aa0ba902b7-01`, 'tracestate', 'v=1'];
    observability.tracer
      .startInbound('in', 'GET', '/x', headers, 'spiffe://td/caller', 'spiffe://td/unit')!
      .end(200, null, null);
    // The batch is not full and the interval is a minute away: only close() sends it.
    expect(receiver.spans).toHaveLength(0);
    await observability.close();
    expect(receiver.spans).toHaveLength(1);
    const span = receiver.spans[0]!;
    expect(span).toMatchObject({
      traceId: TRACE,
      parentSpanId: '00f067aa0ba902b7',
      traceState: 'v=1',
      kind: OTLP_SPAN_KIND.SERVER,
      name: 'GET',
      scope: 'sigil-proxy',
      resource: { 'service.name': 'unit-sidecar', 'sigil.spiffe_id': 'spiffe://td/unit' },
    });
    expect(span.spanId).toBe(headers[1]!.split('-')[2]);
    const exported = (await registry.getSingleMetric('sigil_proxy_trace_spans_total')!.get()).values;
    expect(exported.find((v) => v.labels.outcome === 'exported')?.value).toBe(1);
    const lines = readFileSync(path.join(dir, 'access.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({ path: '/x', trace_id: TRACE, status: 200 }),
    ]);
  });
});
