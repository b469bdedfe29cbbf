// Distributed tracing through real sidecars (issue 12): client → sidecar A (out) → sidecar B (in) →
// app B → B's own sidecar (out) → sidecar C (in) → app C, app B forwarding the trace context as a
// well-behaved app does. A small OTLP receiver decodes what the sidecars export with OpenTelemetry's
// own protobuf definitions. Also: B3 in, W3C out; sample_ratio 0 (no spans, the trace ID still
// propagated); a collector that is down (spans lost and counted, no request failed or slowed);
// the access log; and a sidecar without tracing never loading OpenTelemetry.
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSharedDir, waitFor } from '../support/agent-harness.js';
import { REPO_ROOT } from '../support/harness.js';
import {
  OTLP_SPAN_KIND,
  OTLP_STATUS,
  type OtlpReceiver,
  type ReceivedSpan,
  startOtlpReceiver,
} from '../support/otlp-receiver.js';
import { servicesYaml, useResilienceMesh } from '../support/resilience-mesh.js';
import { scrape, send, sleep, total } from '../support/traffic.js';

// A route on A's `plain` service, so its spans name the rule that took the request.
// Readable by the sidecars' uids; removed after the file (file-cleanup.ts).
const ROUTES = path.join(makeSharedDir('sigil-tracing-routes-').dir, 'routes.yaml');
writeFileSync(
  ROUTES,
  `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: plain, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: plain }]
  rules:
  - name: to-plain
    backendRefs: [{ name: plain }]
`,
);
chmodSync(ROUTES, 0o644);

const CENSUS = ['--import', path.join(REPO_ROOT, 'test', 'support', 'module-census.mjs')];
let receiver: OtlpReceiver | undefined;
const collector = () => {
  if (receiver === undefined) throw new Error('receiver not started');
  return receiver;
};

// Registered before the mesh's own beforeAll, so the receiver's port exists when configs are written.
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

const tracing = (options: { ratio: number; service: string; propagation?: string; extra?: string }) =>
  `tracing:
  collector: ${collector().url}
  sample_ratio: ${options.ratio}
  service_name: ${options.service}
  propagation: ${options.propagation ?? '[w3c]'}
  batch: { interval: 200ms, export_timeout: 2s }
${options.extra ?? ''}`;

const mesh = useResilienceMesh([
  { name: 'plain', uid: 2, apps: ['plainapp'], nodeArgs: CENSUS },
  {
    name: 'cside',
    uid: 1,
    apps: ['capp'],
    nodeArgs: CENSUS,
    outbound: () => tracing({ ratio: 1, service: 'c-sidecar' }),
  },
  {
    name: 'bside',
    uid: 3,
    apps: ['bapp'],
    outbound: (m) =>
      servicesYaml([{ name: 'c', server_ids: [m.id('cside')], endpoints: [m.inbound('capp')] }]) +
      tracing({ ratio: 1, service: 'b-sidecar', propagation: '[w3c, b3]' }),
  },
  {
    name: 'aside',
    uid: 65534,
    outbound: (m) =>
      servicesYaml([
        { name: 'b', server_ids: [m.id('bside')], endpoints: [m.inbound('bapp')] },
        { name: 'plain', server_ids: [m.id('plain')], endpoints: [m.inbound('plainapp')] },
      ]) +
      tracing({
        ratio: 1,
        service: 'frontend-sidecar',
        extra: `access_log: { sample_ratio: 1, path: stdout }\nroutes_file: ${JSON.stringify(ROUTES)}\n`,
      }),
  },
  {
    name: 'zside',
    uid: 4,
    outbound: (m) =>
      servicesYaml([{ name: 'b', server_ids: [m.id('bside')], endpoints: [m.inbound('bapp')] }]) +
      tracing({ ratio: 0, service: 'unsampled-sidecar' }),
  },
]);

function traceparentOf(headers: Record<string, unknown>): {
  traceId: string;
  parentId: string;
  flags: string;
} {
  const value = headers.traceparent;
  expect(value).toEqual(expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/));
  const [, traceId, parentId, flags] = String(value).split('-');
  return { traceId: traceId!, parentId: parentId!, flags: flags! };
}

async function spansOf(traceId: string, count: number): Promise<ReceivedSpan[]> {
  const of = () => collector().spans.filter((s) => s.traceId === traceId);
  await waitFor(
    () => of().length >= count,
    15_000,
    () => `${count} spans of trace ${traceId}; have ${of().length}`,
  );
  return of();
}

const spanOf = (spans: readonly ReceivedSpan[], service: string, kind: number): ReceivedSpan => {
  const found = spans.filter((s) => s.resource['service.name'] === service && s.kind === kind);
  expect(found, `${service} kind ${kind}`).toHaveLength(1);
  return found[0]!;
};

describe('tracing through two hops', () => {
  let traceId = '';

  it('keeps one trace ID from the client to app C, with CLIENT and SERVER spans linked parent to child', async () => {
    mesh.app('bapp').set({ forwardTo: { port: mesh.port('bside', 'c') } });
    mesh.app('capp').clear();
    const outcome = await send(mesh.port('aside', 'b'), { path: '/orders/7?token=secret' });
    expect(outcome.status).toBe(200);
    const atB = traceparentOf(mesh.app('bapp').received.at(-1)!.headers);
    const atC = traceparentOf(mesh.app('capp').received.at(-1)!.headers);
    traceId = atB.traceId;
    expect(atC.traceId).toBe(traceId);
    expect(atC.flags).toBe('01');

    const spans = await spansOf(traceId, 4);
    expect(spans).toHaveLength(4);
    const aClient = spanOf(spans, 'frontend-sidecar', OTLP_SPAN_KIND.CLIENT);
    const bServer = spanOf(spans, 'b-sidecar', OTLP_SPAN_KIND.SERVER);
    const bClient = spanOf(spans, 'b-sidecar', OTLP_SPAN_KIND.CLIENT);
    const cServer = spanOf(spans, 'c-sidecar', OTLP_SPAN_KIND.SERVER);
    // The client sent no trace context: A's span is the root.
    expect(aClient.parentSpanId).toBe('');
    expect(bServer.parentSpanId).toBe(aClient.spanId);
    expect(bClient.parentSpanId).toBe(bServer.spanId);
    expect(cServer.parentSpanId).toBe(bClient.spanId);
    // Each app sees the span of the sidecar in front of it as its parent.
    expect(atB.parentId).toBe(bServer.spanId);
    expect(atC.parentId).toBe(cServer.spanId);
    // B emits B3 as well; C's sidecar passes it on to app C untouched.
    expect(mesh.app('capp').received.at(-1)!.headers.b3).toBe(`${traceId}-${bClient.spanId}-1`);

    expect(aClient.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/orders/7',
      'http.response.status_code': 200,
      'sigil.source_id': mesh.id('aside'),
      'sigil.destination_id': mesh.id('bside'),
      'sigil.attempts': 1,
      'sigil.service': 'b',
    });
    expect(aClient.attributes['url.path']).not.toContain('token');
    expect(bServer.attributes).toMatchObject({
      'sigil.source_id': mesh.id('aside'),
      'sigil.destination_id': mesh.id('bside'),
      'http.response.status_code': 200,
    });
    expect(cServer.attributes).toMatchObject({ 'sigil.source_id': mesh.id('bside') });
    expect(aClient.resource['sigil.spiffe_id']).toBe(mesh.id('aside'));
    expect(aClient.name).toBe('GET');
    expect(aClient.status.code).toBe(OTLP_STATUS.UNSET);
    // Children start after and end before their parents (all on this machine's clock).
    expect(bServer.startNs).toBeGreaterThanOrEqual(aClient.startNs);
    expect(cServer.endNs).toBeLessThanOrEqual(bClient.endNs);
    expect(aClient.endNs).toBeGreaterThan(aClient.startNs);
  });

  it('writes the access log line of that request, with its trace ID', () => {
    const lines = mesh
      .sidecar('aside')
      .logs()
      .split('\n')
      .filter((line) => line.startsWith('{') && line.includes(`"trace_id":"${traceId}"`))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      listener: 'b',
      direction: 'outbound',
      method: 'GET',
      path: '/orders/7',
      status: 200,
      source_id: mesh.id('aside'),
      destination_id: mesh.id('bside'),
      trace_id: traceId,
      route: null,
      attempts: 1,
    });
    expect(lines[0]!.duration_ms).toEqual(expect.any(Number));
    expect(Date.parse(String(lines[0]!.time))).not.toBeNaN();
  });

  it('marks a 5xx answer as an error on the spans, and counts the tries', async () => {
    mesh.app('bapp').set({ failShare: 1, failStatus: 503 });
    const outcome = await send(mesh.port('aside', 'b'));
    expect(outcome.status).toBe(503);
    const { traceId: failed } = traceparentOf(mesh.app('bapp').received.at(-1)!.headers);
    const isAClient = (s: ReceivedSpan) =>
      s.traceId === failed &&
      s.kind === OTLP_SPAN_KIND.CLIENT &&
      s.resource['service.name'] === 'frontend-sidecar';
    await waitFor(
      () => collector().spans.some(isAClient),
      15_000,
      () => "A's client span",
    );
    const aClient = collector().spans.find(isAClient)!;
    // A retried the 503: each try reached B, whose server spans are all children of A's one span.
    const tries = Number(aClient.attributes['sigil.attempts']);
    expect(tries).toBeGreaterThan(1);
    const bServers = await spansOf(failed, 1 + tries);
    const servers = bServers.filter((s) => s.kind === OTLP_SPAN_KIND.SERVER);
    expect(servers).toHaveLength(tries);
    for (const server of servers) {
      expect(server.parentSpanId).toBe(aClient.spanId);
      expect(server.status.code).toBe(OTLP_STATUS.ERROR);
      expect(server.attributes['http.response.status_code']).toBe(503);
    }
    expect(aClient.status.code).toBe(OTLP_STATUS.ERROR);
    mesh.app('bapp').set({});
  });
});

describe('propagation formats and sampling', () => {
  it('reads B3 from the app and sends W3C on, in the same trace', async () => {
    mesh.app('bapp').set({});
    const traceId = '80f198ee56343ba864fe8b2a57d3eff7';
    const callerSpan = 'e457b5a2e4d86bd1';
    const outcome = await send(mesh.port('aside', 'b'), { headers: { b3: `${traceId}-${callerSpan}-1` } });
    expect(outcome.status).toBe(200);
    const atB = traceparentOf(mesh.app('bapp').received.at(-1)!.headers);
    expect(atB.traceId).toBe(traceId);
    const spans = await spansOf(traceId, 2);
    expect(spanOf(spans, 'frontend-sidecar', OTLP_SPAN_KIND.CLIENT).parentSpanId).toBe(callerSpan);
    expect(spanOf(spans, 'b-sidecar', OTLP_SPAN_KIND.SERVER).parentSpanId).toBe(
      spanOf(spans, 'frontend-sidecar', OTLP_SPAN_KIND.CLIENT).spanId,
    );
  });

  it('with sample_ratio 0 makes no spans, yet every hop sees the same trace ID (flag 00)', async () => {
    mesh.app('bapp').set({ forwardTo: { port: mesh.port('bside', 'c') } });
    const outcome = await send(mesh.port('zside', 'b'));
    expect(outcome.status).toBe(200);
    const atB = traceparentOf(mesh.app('bapp').received.at(-1)!.headers);
    const atC = traceparentOf(mesh.app('capp').received.at(-1)!.headers);
    expect(atB.flags).toBe('00');
    expect(atC).toMatchObject({ traceId: atB.traceId, flags: '00' });
    // Several export intervals: nothing of this trace arrives, though B and C sample every new trace.
    await sleep(1_500);
    expect(collector().spans.filter((s) => s.traceId === atB.traceId)).toEqual([]);
    mesh.app('bapp').set({});
  });
});

describe('a collector that is down', () => {
  it('loses spans (counted as dropped) but no request, and adds no latency', async () => {
    mesh.app('bapp').set({});
    const port = mesh.port('aside', 'b');
    const before = total(await scrape(mesh.adminPort('aside')), 'sigil_proxy_trace_spans_total', {
      outcome: 'dropped',
    });
    await collector().stop();
    const outcomes = [];
    for (let i = 0; i < 40; i++) outcomes.push(await send(port));
    expect(outcomes.filter((o) => o.status !== 200)).toEqual([]);
    // Exports run beside requests, never in front of them: no request waits for the collector.
    expect(Math.max(...outcomes.map((o) => o.latencyMs))).toBeLessThan(1_000);
    const dropped = async () =>
      total(await scrape(mesh.adminPort('aside')), 'sigil_proxy_trace_spans_total', { outcome: 'dropped' });
    await waitFor(
      async () => (await dropped()) - before >= 40,
      15_000,
      () => 'spans counted as dropped',
    );
    expect(
      mesh.sidecar('aside').lines('Trace export failed; spans are dropped until the collector answers')
        .length,
    ).toBeGreaterThan(0);

    await collector().start();
    await send(port);
    const { traceId } = traceparentOf(mesh.app('bapp').received.at(-1)!.headers);
    await spansOf(traceId, 2);
    expect(
      total(await scrape(mesh.adminPort('aside')), 'sigil_proxy_trace_spans_total', { outcome: 'exported' }),
    ).toBeGreaterThan(0);
  });
});

describe('tracing off', () => {
  const census = async (sidecar: string): Promise<string[]> => {
    const process = mesh.sidecar(sidecar);
    const seen = process.lines('module census').length;
    process.child.kill('SIGUSR2');
    await waitFor(
      () => process.lines('module census').length > seen,
      10_000,
      () => `${sidecar} census`,
    );
    return process.lines('module census').at(-1)!.modules as string[];
  };

  it('leaves headers alone and never loads OpenTelemetry; a traced sidecar does load it', async () => {
    const outcome = await send(mesh.port('aside', 'plain'), {
      headers: { traceparent: `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01` },
    });
    expect(outcome.status).toBe(200);
    // A's span id replaced the client's; the untraced sidecar in front of the app passed it as it came.
    const atApp = traceparentOf(mesh.app('plainapp').received.at(-1)!.headers);
    expect(atApp.traceId).toBe('ab'.repeat(16));
    const aClient = spanOf(await spansOf(atApp.traceId, 1), 'frontend-sidecar', OTLP_SPAN_KIND.CLIENT);
    expect(atApp.parentId).toBe(aClient.spanId);
    // The router names the rule that took the request; the span carries it.
    expect(aClient.attributes['sigil.route']).toEqual(expect.stringContaining('to-plain'));

    const plain = await census('plain');
    expect(plain.length).toBeGreaterThan(10);
    // prom-client's default metrics load @opentelemetry/api (the small API, for exemplars) in any
    // sidecar; the SDK, exporter and protobuf code must not load without tracing.
    const loaded = (files: string[]) =>
      files.filter(
        (file) =>
          file.includes(`${path.sep}@opentelemetry${path.sep}`) &&
          !file.includes(`${path.sep}@opentelemetry${path.sep}api${path.sep}`),
      );
    expect(loaded(plain)).toEqual([]);
    const traced = await census('cside');
    expect(loaded(traced).length).toBeGreaterThan(0);
    expect(
      traced.some((file) =>
        file.includes(`${path.sep}@opentelemetry${path.sep}exporter-trace-otlp-proto${path.sep}`),
      ),
    ).toBe(true);
  });
});
