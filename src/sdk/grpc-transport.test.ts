// The SDK's gRPC transport against grpc-js's server (the one the agent runs) and against a raw
// node:http2 server that answers what a gRPC server never should, over Unix sockets and TCP.
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseWorkloadEndpoint } from './address.js';
import { GRPC_STATUS_NAMES, GrpcCallError, GrpcTransport } from './grpc-transport.js';

const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const SERVICE = {
  Echo: { path: '/test.T/Echo', requestStream: false, responseStream: false, ...rawMethod() },
  Count: { path: '/test.T/Count', requestStream: false, responseStream: true, ...rawMethod() },
};
function rawMethod() {
  return {
    requestSerialize: raw.serialize,
    requestDeserialize: raw.deserialize,
    responseSerialize: raw.serialize,
    responseDeserialize: raw.deserialize,
  };
}

let dir: string;
const closers: Array<() => Promise<void> | void> = [];
const seenMetadata: Array<Record<string, unknown>> = [];
let cancelledStreams = 0;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-grpc-'));
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts a grpc-js server; stopping it (at the end of the test, or earlier) ends its calls at once. */
async function startGrpcServer(target: string): Promise<{ port: number; stop(): void }> {
  const server = new Server();
  server.addService(SERVICE, {
    Echo(call: ServerUnaryCall<Buffer, Buffer>, done: sendUnaryData<Buffer>) {
      seenMetadata.push(call.metadata.getMap());
      const text = call.request.toString();
      if (text === 'deny')
        return done({ code: status.PERMISSION_DENIED, details: 'no entry for uid 42 — ünïcode' });
      if (text === 'big') return done(null, Buffer.alloc(4 * 1024 * 1024 + 1));
      done(null, Buffer.concat([Buffer.from('echo:'), call.request]));
    },
    Count(call: ServerWritableStream<Buffer, Buffer>) {
      const n = Number(call.request.toString());
      call.on('cancelled', () => cancelledStreams++);
      if (n < 0) return call.emit('error', { code: status.INVALID_ARGUMENT, details: 'negative' });
      for (let i = 0; i < n; i++) call.write(Buffer.from(String(i)));
      if (n > 0) call.end(); // n === 0: stays open until cancelled
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(target, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const stop = () => server.forceShutdown();
  closers.push(stop);
  return { port, stop };
}

function transportFor(address: string): GrpcTransport {
  const transport = new GrpcTransport(parseWorkloadEndpoint(address), { 'workload.spiffe.io': 'true' });
  closers.push(() => transport.close());
  return transport;
}

async function collect(transport: GrpcTransport, n: number, signal?: AbortSignal): Promise<string[]> {
  const got: string[] = [];
  await transport.call('/test.T/Count', Buffer.from(String(n)), (m) => got.push(m.toString()), signal);
  return got;
}

async function failure(promise: Promise<unknown>): Promise<GrpcCallError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GrpcCallError);
  return err as GrpcCallError;
}

const nameOf = (err: GrpcCallError) => GRPC_STATUS_NAMES[err.code];

describe('gRPC transport against grpc-js', () => {
  it('runs unary and server-streaming calls over a Unix socket, with our metadata, on one connection', async () => {
    const socket = path.join(dir, 'a.sock');
    await startGrpcServer(`unix://${socket}`);
    const transport = transportFor(`unix://${socket}`);
    expect((await transport.unary('/test.T/Echo', Buffer.from('hi'))).toString()).toBe('echo:hi');
    expect(seenMetadata.at(-1)).toMatchObject({ 'workload.spiffe.io': 'true' });
    expect(await collect(transport, 300)).toEqual(Array.from({ length: 300 }, (_, i) => String(i)));
    expect(await collect(transport, 2)).toEqual(['0', '1']);
  });

  it('runs calls over TCP (IPv4 and IPv6)', async () => {
    const { port: port4 } = await startGrpcServer('127.0.0.1:0');
    expect(
      (await transportFor(`tcp://127.0.0.1:${port4}`).unary('/test.T/Echo', Buffer.from('4'))).toString(),
    ).toBe('echo:4');
    const { port: port6 } = await startGrpcServer('[::1]:0');
    expect(
      (await transportFor(`tcp://[::1]:${port6}`).unary('/test.T/Echo', Buffer.from('6'))).toString(),
    ).toBe('echo:6');
  });

  it('reports the server status with its percent-decoded message, from trailers and Trailers-Only', async () => {
    const socket = path.join(dir, 'b.sock');
    await startGrpcServer(`unix://${socket}`);
    const transport = transportFor(`unix://${socket}`);
    const denied = await failure(transport.unary('/test.T/Echo', Buffer.from('deny')));
    expect(nameOf(denied)).toBe('PERMISSION_DENIED');
    expect(denied.details).toBe('no entry for uid 42 — ünïcode');
    expect(nameOf(await failure(collect(transport, -1)))).toBe('INVALID_ARGUMENT');
    expect(nameOf(await failure(transport.unary('/test.T/Nope', Buffer.alloc(0))))).toBe('UNIMPLEMENTED');
  });

  it('refuses a message over 4 MiB with RESOURCE_EXHAUSTED', async () => {
    const socket = path.join(dir, 'c.sock');
    await startGrpcServer(`unix://${socket}`);
    const err = await failure(transportFor(`unix://${socket}`).unary('/test.T/Echo', Buffer.from('big')));
    expect(nameOf(err)).toBe('RESOURCE_EXHAUSTED');
  });

  it('cancels a stream when the signal aborts, and when the message handler throws', async () => {
    const socket = path.join(dir, 'd.sock');
    await startGrpcServer(`unix://${socket}`);
    const transport = transportFor(`unix://${socket}`);
    const controller = new AbortController();
    const open = transport.call('/test.T/Count', Buffer.from('0'), () => {}, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    expect(nameOf(await failure(open))).toBe('CANCELLED');
    const boom = new Error('handler failed');
    const thrown = await transport
      .call(
        '/test.T/Count',
        Buffer.from('3'),
        () => {
          throw boom;
        },
        undefined,
      )
      .catch((e: unknown) => e);
    expect(thrown).toBe(boom);
    await expect.poll(() => cancelledStreams).toBeGreaterThanOrEqual(1);
    // The connection is still good for the next call.
    expect(await collect(transport, 1)).toEqual(['0']);
  });

  it('answers UNAVAILABLE while nothing listens, then reconnects once the server is back', async () => {
    const socket = path.join(dir, 'e.sock');
    const transport = transportFor(`unix://${socket}`);
    expect(nameOf(await failure(transport.unary('/test.T/Echo', Buffer.from('x'))))).toBe('UNAVAILABLE');
    const first = await startGrpcServer(`unix://${socket}`);
    expect((await transport.unary('/test.T/Echo', Buffer.from('x'))).toString()).toBe('echo:x');
    // A server that goes away ends an open stream with UNAVAILABLE; a new server is reached again.
    const open = transport.call('/test.T/Count', Buffer.from('0'), () => {});
    await new Promise((resolve) => setTimeout(resolve, 50));
    first.stop();
    expect(nameOf(await failure(open))).toBe('UNAVAILABLE');
    await startGrpcServer(`unix://${socket}`);
    expect((await transport.unary('/test.T/Echo', Buffer.from('y'))).toString()).toBe('echo:y');
  });

  it('fails calls after close with UNAVAILABLE', async () => {
    const socket = path.join(dir, 'f.sock');
    await startGrpcServer(`unix://${socket}`);
    const transport = transportFor(`unix://${socket}`);
    await transport.unary('/test.T/Echo', Buffer.from('x'));
    transport.close();
    expect(nameOf(await failure(transport.unary('/test.T/Echo', Buffer.from('x'))))).toBe('UNAVAILABLE');
  });

  it('vets a unix socket before each new connection, and a refusal fails the call with its own error', async () => {
    const socket = path.join(dir, 'g.sock');
    await startGrpcServer(`unix://${socket}`);
    const checked: string[] = [];
    const vetted = new GrpcTransport(parseWorkloadEndpoint(`unix://${socket}`), {}, (p) => checked.push(p));
    closers.push(() => vetted.close());
    await vetted.unary('/test.T/Echo', Buffer.from('a'));
    await vetted.unary('/test.T/Echo', Buffer.from('b'));
    expect(checked).toEqual([socket]);

    const planted = new Error('socket planted by uid 1001');
    const refused = new GrpcTransport(parseWorkloadEndpoint(`unix://${socket}`), {}, () => {
      throw planted;
    });
    closers.push(() => refused.close());
    const callsBefore = seenMetadata.length;
    await expect(refused.unary('/test.T/Echo', Buffer.from('c'))).rejects.toBe(planted);
    expect(seenMetadata.length).toBe(callsBefore);
  });
});

describe('gRPC transport against a server that does not speak gRPC properly', () => {
  async function rawServer(respond: (stream: http2.ServerHttp2Stream) => void): Promise<GrpcTransport> {
    const socket = path.join(dir, `raw-${Math.random().toString(36).slice(2)}.sock`);
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.resume();
      respond(stream);
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
        }),
    );
    return transportFor(`unix://${socket}`);
  }

  it('maps HTTP statuses (404 → UNIMPLEMENTED, 503 → UNAVAILABLE) and refuses other content types', async () => {
    const notFound = await rawServer((s) => s.respond({ ':status': 404 }, { endStream: true }));
    expect(nameOf(await failure(notFound.unary('/x/y', Buffer.alloc(0))))).toBe('UNIMPLEMENTED');
    const busy = await rawServer((s) => s.respond({ ':status': 503 }, { endStream: true }));
    expect(nameOf(await failure(busy.unary('/x/y', Buffer.alloc(0))))).toBe('UNAVAILABLE');
    const html = await rawServer((s) => {
      s.respond({ ':status': 200, 'content-type': 'text/html' });
      s.end('<html>');
    });
    expect(nameOf(await failure(html.unary('/x/y', Buffer.alloc(0))))).toBe('UNKNOWN');
  });

  it('refuses compressed messages, truncated messages and a missing status', async () => {
    const grpcHeaders = { ':status': 200, 'content-type': 'application/grpc' };
    const compressed = await rawServer((s) => {
      s.respond(grpcHeaders, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.end(Buffer.from([1, 0, 0, 0, 1, 0x41]));
    });
    expect(nameOf(await failure(compressed.unary('/x/y', Buffer.alloc(0))))).toBe('INTERNAL');
    const truncated = await rawServer((s) => {
      s.respond(grpcHeaders, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.end(Buffer.from([0, 0, 0, 0, 9, 0x41]));
    });
    expect(nameOf(await failure(truncated.unary('/x/y', Buffer.alloc(0))))).toBe('INTERNAL');
    const silent = await rawServer((s) => {
      s.respond(grpcHeaders);
      s.end(Buffer.from([0, 0, 0, 0, 1, 0x41]));
    });
    expect(nameOf(await failure(silent.unary('/x/y', Buffer.alloc(0))))).toBe('UNAVAILABLE');
  });
});
