// The outbound gRPC relay in one process, over real sockets and real mTLS: a grpc-js client on an
// outbound `http2` listener whose service has GRPCRoutes, two inbound sidecars (one piping the
// h2c opaquely to its app, one relaying per stream) in front of two grpc-js Greeter servers.
import { createServer as createH2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { addAbortSignal } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type GreeterServer, greeterClient, startGreeter } from '../../../test/support/greeter.js';
import { ManualClock, systemClock } from '../../spiffe/clock.js';
import { seededRandom } from '../../spiffe/seeded-random.test-support.js';
import { startInbound } from '../inbound/index.js';
import { DEFAULT_LIMITS, type ListenerLimits } from '../limits.js';
import {
  cleanups,
  makeSide,
  metricValue,
  RecordingAuthorizer,
  SERVER_ID,
  tdA,
  useProxyTestHarness,
} from '../pair.test-support.js';
import type { GrpcRouteEntry, GrpcRule, RouteTable, WeightedBackend } from '../routes/model.js';
import { EMPTY_ROUTE_TABLE } from '../routes/model.js';
import { legacyService } from '../services/config.js';
import { startOutbound } from './index.js';
import { createServiceMetrics } from './service-metrics.js';
import { UpstreamServices } from './services.js';

useProxyTestHarness();

const rule = (name: string, backends: WeightedBackend[], extra: Partial<GrpcRule> = {}): GrpcRule => ({
  origin: { route: 'default/greeter', kind: 'GRPCRoute', index: 0, name },
  requestHeaders: null,
  responseHeaders: null,
  backends,
  ...extra,
});
const exact = (
  method: string | null,
  target: GrpcRule,
  headers: GrpcRouteEntry['match']['headers'] = [],
) => ({
  match: { method: { type: 'Exact' as const, service: 'helloworld.Greeter', method }, headers },
  rule: target,
});
const V1 = { service: 'greeter-v1', weight: 1 };
const V2 = { service: 'greeter-v2', weight: 1 };

/** `listener`: the outbound listener's limits and clock (its idle checks run on it). */
async function startMesh(
  entries: GrpcRouteEntry[] | null,
  listener: { limits?: ListenerLimits; clock?: ManualClock } = {},
) {
  const greeters: Record<string, GreeterServer> = {};
  const inboundRegistries: Record<string, ReturnType<typeof makeSide>['registry']> = {};
  const ports: Record<string, number> = {};
  for (const [version, perStream] of [
    ['v1', false],
    ['v2', true],
  ] as const) {
    const greeter = await startGreeter(version);
    cleanups.push(() => greeter.stop());
    const side = makeSide(tdA.mint('/server'));
    const inbound = await startInbound({
      name: `in-${version}`,
      listen: { host: '127.0.0.1', port: 0 },
      protocol: 'http2',
      app: { host: '127.0.0.1', port: greeter.port },
      mode: 'strict',
      identity: side.identity,
      // v2's policy looks at paths: its sidecar relays per stream; v1's pipes.
      authorizer: new RecordingAuthorizer(() => false, perStream),
      metrics: side.metrics,
      logger: side.logger,
    });
    cleanups.push(() => inbound.close());
    greeters[version] = greeter;
    inboundRegistries[version] = side.registry;
    ports[version] = inbound.address.port;
  }
  // An app that resets every stream once it has answered headers (a backend cancelling mid-call).
  const resetting = createH2Server();
  resetting.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    // RST_STREAM CANCEL (close(CANCEL) would send END_STREAM first on a half-closed stream).
    stream.write(Buffer.from([0, 0, 0, 0, 2, 0x7b, 0x7d]), () => addAbortSignal(AbortSignal.abort(), stream));
  });
  const rawSessions = new Set<{ destroy(): void }>();
  resetting.on('session', (session) => rawSessions.add(session));
  await new Promise<void>((resolve) => resetting.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const session of rawSessions) session.destroy();
        resetting.close(() => resolve());
      }),
  );
  const rawSide = makeSide(tdA.mint('/server'));
  const rawInbound = await startInbound({
    name: 'in-raw',
    listen: { host: '127.0.0.1', port: 0 },
    protocol: 'http2',
    app: { host: '127.0.0.1', port: (resetting.address() as AddressInfo).port },
    mode: 'strict',
    identity: rawSide.identity,
    authorizer: new RecordingAuthorizer(),
    metrics: rawSide.metrics,
    logger: rawSide.logger,
  });
  cleanups.push(() => rawInbound.close());
  ports.raw = rawInbound.address.port;
  // Nothing listens on port 1: connects to it fail at once.
  ports.down = 1;
  const client = makeSide(tdA.mint('/client'));
  const services = new UpstreamServices({
    identity: client.identity,
    clock: systemClock,
    random: Math.random,
    metrics: client.metrics,
    serviceMetrics: createServiceMetrics(client.registry),
    logger: client.logger,
  });
  cleanups.push(() => services.close());
  const at = (version: string) => ({ host: '127.0.0.1', port: ports[version]! });
  await services.apply(
    [
      legacyService('greeter', at('v1'), [SERVER_ID]),
      legacyService('greeter-v1', at('v1'), [SERVER_ID]),
      legacyService('greeter-v2', at('v2'), [SERVER_ID]),
      legacyService('greeter-raw', at('raw'), [SERVER_ID]),
      legacyService('greeter-down', at('down'), [SERVER_ID]),
    ],
    new Map([['out', 'greeter']]),
  );
  const table: { current: RouteTable } = {
    current:
      entries === null ? EMPTY_ROUTE_TABLE : { ...EMPTY_ROUTE_TABLE, grpc: new Map([['greeter', entries]]) },
  };
  const outbound = await startOutbound({
    name: 'out',
    listen: { host: '127.0.0.1', port: 0 },
    protocol: 'http2',
    upstream: services.ref('out'),
    identity: client.identity,
    metrics: client.metrics,
    logger: client.logger,
    ...listener,
    grpcRouting: {
      routes: () => table.current,
      service: (name) => services.get(name),
      random: seededRandom(7),
    },
  });
  cleanups.push(() => outbound.close());
  const grpc = greeterClient(outbound.address.port);
  cleanups.push(() => grpc.close());
  return {
    greeters,
    grpc,
    table,
    port: outbound.address.port,
    registry: client.registry,
    source: client.source,
    inboundRegistries,
  };
}

describe('outbound gRPC relay (GRPCRoute)', () => {
  it('splits SayHello by weight, forces v2 on a header match, and routes methods', async () => {
    const canary = rule('canary', [V2]);
    const split = rule('split', [V1, V2]);
    const goodbye = rule('goodbye', [V2]);
    const { grpc, greeters } = await startMesh([
      exact('SayHello', canary, [{ type: 'Exact', name: 'x-canary', value: '1' }]),
      exact('SayGoodbye', goodbye),
      exact('SayHello', split),
    ]);
    const versions: string[] = [];
    for (let i = 0; i < 200; i++) versions.push((await grpc.sayHello(`n${i}`)).version);
    const v2 = versions.filter((v) => v === 'v2').length;
    expect(v2).toBeGreaterThan(70);
    expect(v2).toBeLessThan(130);
    for (let i = 0; i < 10; i++) expect((await grpc.sayHello('c', { 'x-canary': '1' })).version).toBe('v2');
    const bye = await grpc.sayGoodbye('x');
    expect(bye).toMatchObject({ version: 'v2', message: 'SayGoodbye x' });
    expect(greeters.v1!.calls.get('SayGoodbye')).toBeUndefined();
  });

  it('answers UNIMPLEMENTED when no rule matches, and UNAVAILABLE for a rule without weight', async () => {
    const { grpc } = await startMesh([exact('SayHello', rule('zero', [{ ...V1, weight: 0 }]))]);
    await expect(grpc.sayGoodbye('x')).rejects.toMatchObject({ code: 12 });
    await expect(grpc.sayHello('x')).rejects.toMatchObject({ code: 14 });
  });

  it('relays server streaming with trailers and status, and applies header modifiers', async () => {
    const modified = rule('mod', [V2], {
      requestHeaders: { set: [{ name: 'X-Route', value: 'v2' }], add: [], remove: ['x-drop'] },
      responseHeaders: { set: [{ name: 'x-resp', value: 'yes' }], add: [], remove: [] },
    });
    const { grpc } = await startMesh([exact(null, modified)]);
    const streamed = await grpc.streamHellos('s');
    expect(streamed.replies.map((r) => r.message)).toEqual(['hello s #0', 'hello s #1', 'hello s #2']);
    expect(streamed).toMatchObject({ code: 9, details: 'done streaming from v2', servedBy: 'v2' });
    // The backend's own trailers-only answer (it has no such method) is relayed as it is.
    const missing = (await grpc.callPath('/helloworld.Greeter/Missing').catch((e: unknown) => e)) as {
      code: number;
      metadata: { get(key: string): unknown[] };
    };
    expect(missing.code).toBe(12);
    expect(missing.metadata.get('x-sigil-error')).toEqual([]);
    expect(missing.metadata.get('x-resp')).toEqual(['yes']);
    const reply = await grpc.sayHello('h', { 'x-drop': 'gone' }, { deadline: Date.now() + 30_000 });
    expect(reply.metadata['x-route']).toBe('v2');
    expect(reply.metadata['x-drop']).toBeUndefined();
    // grpc-timeout became the absolute deadline the next hop reads.
    const deadline = Number(reply.metadata['x-sigil-deadline']);
    expect(deadline).toBeGreaterThan(Date.now());
    expect(deadline).toBeLessThan(Date.now() + 31_000);
  });

  it('cancels the backend stream when the app cancels a live call', async () => {
    const { grpc, greeters } = await startMesh([exact(null, rule('all', [V2]))]);
    const call = grpc.hang();
    await waitUntil(() => greeters.v2!.hanging === 1);
    call.cancel();
    expect((await call.done).code).toBe(1);
    await waitUntil(() => greeters.v2!.cancelled === 1);
    // The session survives: the next call goes through.
    expect((await grpc.sayHello('after')).version).toBe('v2');
  });

  it('resets the app stream when the backend resets it, and answers UNAVAILABLE for an unreachable backend', async () => {
    const { grpc } = await startMesh([
      exact('SayHello', rule('raw', [{ service: 'greeter-raw', weight: 1 }])),
      exact('SayGoodbye', rule('down', [{ service: 'greeter-down', weight: 1 }])),
      exact('StreamHellos', rule('unknown', [{ service: 'not-configured', weight: 1 }])),
    ]);
    await expect(grpc.sayHello('r')).rejects.toMatchObject({ code: 1 });
    await expect(grpc.sayGoodbye('d')).rejects.toMatchObject({ code: 14 });
    expect(await grpc.streamHellos('u')).toMatchObject({ code: 14, replies: [] });
  });

  it('moves new streams to connections made with the new SVID when it rotates', async () => {
    const { grpc, source, inboundRegistries } = await startMesh([exact(null, rule('all', [V1]))]);
    const connections = () =>
      metricValue(inboundRegistries.v1!, 'sigil_proxy_tcp_connections_total', { listener: 'in-v1' });
    expect((await grpc.sayGoodbye('before')).version).toBe('v1');
    expect(await connections()).toBe(1);
    source.push(tdA.mint('/client'));
    expect((await grpc.sayGoodbye('after')).version).toBe('v1');
    expect(await connections()).toBe(2);
  });

  it('keeps the opaque pipe without routes, and new connections follow routes that appear', async () => {
    const { grpc, table, port, greeters } = await startMesh(null);
    expect((await grpc.sayGoodbye('p')).version).toBe('v1');
    table.current = { ...EMPTY_ROUTE_TABLE, grpc: new Map([['greeter', [exact(null, rule('all', [V2]))]]]) };
    // The existing connection keeps its pipe; a new one is relayed and routed.
    expect((await grpc.sayGoodbye('p')).version).toBe('v1');
    const fresh = greeterClient(port);
    cleanups.push(() => fresh.close());
    expect((await fresh.sayGoodbye('p')).version).toBe('v2');
    expect(greeters.v2!.calls.get('SayGoodbye')).toBe(1);
  });
});

describe('outbound gRPC relay limits', () => {
  const everything = [exact(null, rule('all', [V1]))];

  it("holds the app to the listener's max_concurrent_streams", async () => {
    const { grpc, greeters, port } = await startMesh(everything, {
      limits: { ...DEFAULT_LIMITS, maxConcurrentStreams: 2 },
    });
    const calls = [grpc.hang(), grpc.hang(), grpc.hang()];
    await waitUntil(() => greeters.v1!.hanging === 2);
    // Round trips through the relay on another connection: the third stream is still held back.
    const other = greeterClient(port);
    cleanups.push(() => other.close());
    for (let i = 0; i < 5; i++) expect((await other.sayGoodbye('probe')).version).toBe('v1');
    expect(greeters.v1!.hanging).toBeLessThanOrEqual(2);
    expect(greeters.v1!.calls.get('Hang')).toBe(2);
    calls[0]!.cancel();
    await waitUntil(() => greeters.v1!.calls.get('Hang') === 3);
    for (const call of calls) call.cancel();
  });

  it('resets a stream without DATA for stream_idle_timeout, and counts it', async () => {
    const clock = new ManualClock(Date.now());
    const { grpc, greeters, registry } = await startMesh(everything, {
      limits: { ...DEFAULT_LIMITS, streamIdleTimeoutMs: 1_000 },
      clock,
    });
    const call = grpc.hang();
    await waitUntil(() => greeters.v1!.hanging === 1);
    await clock.advance(1_600);
    // The relay reset the app's stream (CANCEL) and, with it, the backend's.
    expect((await call.done).code).toBe(1);
    await waitUntil(() => greeters.v1!.cancelled === 1);
    expect(
      await metricValue(registry, 'sigil_proxy_timeouts_total', { listener: 'out', timeout: 'stream-idle' }),
    ).toBe(1);
    // The connection is still usable.
    expect((await grpc.sayGoodbye('after')).version).toBe('v1');
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const startedMs = performance.now();
  while (!condition()) {
    if (performance.now() - startedMs > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setImmediate(resolve));
  }
}
