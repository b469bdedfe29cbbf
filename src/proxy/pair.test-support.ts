// Test support for the proxy's listener tests: two trust domains, an inbound/outbound pair over
// real sockets and real mTLS in front of apps on loopback (an HTTP echo app that records what it
// received, a TCP echo), a recording authorizer, raw HTTP/1.1 exchanges and metric reads.
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage } from 'node:http';
import {
  type AddressInfo,
  createServer as createNetServer,
  connect as netConnect,
  type Server,
} from 'node:net';
import type { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { Registry } from 'prom-client';
import { afterEach, beforeAll } from 'vitest';
import type { X509Source } from '../sdk/index.js';
import type { TrustBundle } from '../spiffe/bundle.js';
import { systemClock } from '../spiffe/clock.js';
import { encodePem } from '../spiffe/pem.js';
import { type IdentitySource, ProxyIdentity } from './identity.js';
import type { AuthorizationRequest, Authorizer } from './inbound/index.js';
import { type InboundOptions, startInbound } from './inbound/index.js';
import { createProxyMetrics, type ProxyMetrics } from './metrics.js';
import { startOutbound } from './outbound/index.js';
import { createServiceMetrics } from './outbound/service-metrics.js';
import { UpstreamServices } from './outbound/services.js';
import { legacyService, type PipeliningConfig } from './services/config.js';
import {
  FakeSource,
  makeTrustDomain,
  RecordingLogger,
  type TestSvid,
  type TestTrustDomain,
} from './testing.test-support.js';

export const SERVER_ID = 'spiffe://a.test/server';
export const CLIENT_ID = 'spiffe://a.test/client';

// Live bindings, set by the hooks useProxyTestHarness registers in the importing test file.
export let tdA: TestTrustDomain;
export let tdB: TestTrustDomain;
/** Same trust domain name as tdA, with a CA that is not in a.test's bundle. */
export let rogueA: TestTrustDomain;
export let bundles: Map<string, TrustBundle>;
/** Run in reverse after each test. */
export const cleanups: (() => Promise<void> | void)[] = [];

/** Registers the trust domains (once per file) and the per-test cleanup. Call at the top of a test file. */
export function useProxyTestHarness(): void {
  beforeAll(async () => {
    tdA = await makeTrustDomain('a.test');
    tdB = await makeTrustDomain('b.test');
    rogueA = await makeTrustDomain('a.test');
    bundles = new Map([['a.test', tdA.bundle]]);
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
}

// The fake must stand where the real SDK source goes.
const sourceTypeCheck = (source: X509Source): IdentitySource => source;
void sourceTypeCheck;

export class RecordingAuthorizer implements Authorizer {
  readonly seen: AuthorizationRequest[] = [];
  constructor(
    public deny: (r: AuthorizationRequest) => boolean = () => false,
    public needsDetails = false,
  ) {}
  needsRequestDetails(): boolean {
    return this.needsDetails;
  }
  authorize(request: AuthorizationRequest) {
    this.seen.push(request);
    return this.deny(request)
      ? { allow: false, reason: 'no rule allows it', rule: 'deny-all' }
      : { allow: true, reason: 'allowed', rule: 'allow-test' };
  }
}

export function leafHash(svid: TestSvid): string {
  return createHash('sha256').update(svid.certificates[0]!).digest('hex');
}

export async function listen(server: Server | HttpServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        (server as HttpServer).closeAllConnections?.();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** An HTTP app that echoes what it received (raw headers included) and counts its connections. */
export async function startHttpApp() {
  const state = { connections: 0, requests: [] as { rawHeaders: string[]; url: string }[] };
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.requests.push({ rawHeaders: req.rawHeaders, url: req.url ?? '' });
      const body = JSON.stringify({
        method: req.method,
        url: req.url,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(200, [
        'Content-Type',
        'application/json',
        'Set-Cookie',
        'a=1',
        'Set-Cookie',
        'b=2',
        'X-Mixed-Case',
        'Yes',
        'Connection',
        'X-Hop-Resp',
        'X-Hop-Resp',
        'secret',
        'Content-Length',
        String(Buffer.byteLength(body)),
      ]);
      res.end(body);
    });
  });
  server.on('connection', () => state.connections++);
  // A minimal WebSocket-style upgrade: answer 101, then echo raw bytes.
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    state.requests.push({ rawHeaders: req.rawHeaders, url: req.url ?? '' });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  const port = await listen(server);
  return { port, state };
}

export async function startEchoApp(): Promise<number> {
  const server = createNetServer({ allowHalfOpen: true }, (socket) => socket.pipe(socket));
  return listen(server);
}

export interface Side {
  source: FakeSource;
  identity: ProxyIdentity;
  metrics: ProxyMetrics;
  registry: Registry;
  logger: RecordingLogger;
}

export function makeSide(svid: TestSvid): Side {
  const source = new FakeSource(svid, bundles);
  const identity = new ProxyIdentity(source);
  cleanups.push(() => identity.close());
  const registry = new Registry();
  return { source, identity, metrics: createProxyMetrics(registry), registry, logger: new RecordingLogger() };
}

export async function startPair(options: {
  protocol: 'http' | 'tcp' | 'http2';
  appPort: number;
  authorizer?: Authorizer;
  serverIds?: string[];
  mode?: 'strict' | 'permissive';
  /** For both listeners. */
  limits?: InboundOptions['limits'];
  pathNormalization?: InboundOptions['pathNormalization'];
  /** The inbound listener's (tracing/). */
  inboundTracer?: InboundOptions['tracer'];
  /** The outbound service's `pipelining`; off by default. */
  pipelining?: PipeliningConfig;
}) {
  const server = makeSide(tdA.mint('/server'));
  const client = makeSide(tdA.mint('/client'));
  const authorizer = options.authorizer ?? new RecordingAuthorizer();
  const inbound = await startInbound({
    name: 'in',
    listen: { host: '127.0.0.1', port: 0 },
    protocol: options.protocol,
    app: { host: '127.0.0.1', port: options.appPort },
    mode: options.mode ?? 'strict',
    identity: server.identity,
    authorizer,
    metrics: server.metrics,
    logger: server.logger,
    limits: options.limits,
    pathNormalization: options.pathNormalization,
    tracer: options.inboundTracer,
  });
  cleanups.push(() => inbound.close());
  const services = new UpstreamServices({
    identity: client.identity,
    clock: systemClock,
    random: Math.random,
    metrics: client.metrics,
    serviceMetrics: createServiceMetrics(client.registry),
    logger: client.logger,
  });
  cleanups.push(() => services.close());
  const upstream = { host: '127.0.0.1', port: inbound.address.port };
  await services.apply(
    [
      {
        ...legacyService('out', upstream, options.serverIds ?? [SERVER_ID]),
        pipelining: options.pipelining ?? null,
      },
    ],
    new Map([['out', 'out']]),
  );
  const outbound = await startOutbound({
    name: 'out',
    listen: { host: '127.0.0.1', port: 0 },
    protocol: options.protocol,
    upstream: services.ref('out'),
    identity: client.identity,
    metrics: client.metrics,
    logger: client.logger,
    limits: options.limits,
  });
  cleanups.push(() => outbound.close());
  return { server, client, inbound, outbound, authorizer };
}

/** Sends raw HTTP/1.1 requests on one socket and collects `count` responses (content-length bodies). */
export async function rawExchange(
  port: number,
  requests: string[],
): Promise<{ head: string; body: string }[]> {
  const socket = netConnect({ host: '127.0.0.1', port });
  cleanups.push(() => void socket.destroy());
  let buffer = Buffer.alloc(0);
  const responses: { head: string; body: string }[] = [];
  return new Promise((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        responses.push({ head, body: buffer.subarray(end + 4, end + 4 + length).toString() });
        buffer = buffer.subarray(end + 4 + length);
        if (responses.length === requests.length) {
          socket.end();
          resolve(responses);
          return;
        }
        socket.write(requests[responses.length]!);
      }
    });
    socket.write(requests[0]!);
  });
}

export function headerPairs(raw: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  return pairs;
}

export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  const found = metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return found?.value ?? 0;
}

/** A client connection straight to an inbound listener, with an SVID (a.test/client by default). */
export function mtlsConnect(port: number, svid: TestSvid = tdA.mint('/client')): TLSSocket {
  const socket = tlsConnect({
    host: '127.0.0.1',
    port,
    rejectUnauthorized: false,
    key: svid.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    cert: encodePem('CERTIFICATE', svid.certificates[0]!),
  });
  socket.on('error', () => {});
  cleanups.push(() => void socket.destroy());
  return socket;
}

/** Resolves when `socket` closes: what it received and how long after this call it closed. */
export function untilClosed(socket: Duplex): Promise<{ received: string; elapsedMs: number }> {
  const startedMs = performance.now();
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  return new Promise((resolve) =>
    socket.once('close', () => resolve({ received, elapsedMs: performance.now() - startedMs })),
  );
}
