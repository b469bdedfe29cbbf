// The relay's two halves against a plain HTTP server: the terminal Handler over undici (which we
// load from a private path and drive through its legacy handler API, so a change there must fail
// here, loudly) and serveRequest writing what a Handler settles with.

import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Pool as PublicPool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ProxyError } from './errors.js';
import { dispatchRequest, Pool, type RelayOutcome, serveRequest } from './http-relay.js';
import type { BodySink, Handler, ProxyRequest, ProxyResponse } from './resilience/layer.js';
import { RequestAbort } from './resilience/request-signal.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const closed: string[] = [];
  const server = createServer((req, res) => {
    req.once('close', () => {
      if (!res.writableFinished) closed.push(req.url ?? '');
    });
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const port = (server.address() as AddressInfo).port;
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
  cleanups.push(() => pool.destroy());
  /** Requests the server saw closed before it finished answering them. */
  return { port, pool, closed };
}

function get(path: string, method = 'GET'): ProxyRequest {
  return { method, path, headers: ['host', 'upstream'], body: null };
}

/** A sink that collects what it is given. */
function collector() {
  const chunks: Buffer[] = [];
  let ended = false;
  const sink: BodySink = {
    write: (chunk) => {
      chunks.push(chunk);
      return true;
    },
    end: () => {
      ended = true;
    },
    once: () => undefined,
  };
  return { sink, text: () => Buffer.concat(chunks).toString(), isEnded: () => ended };
}

function pipe(response: ProxyResponse) {
  const into = collector();
  const done = new Promise<Error | null>((resolve) => response.body.pipeTo(into.sink, resolve));
  return { into, done };
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('undici, as the relay uses it', () => {
  it('is undici’s own Pool, loaded from its private path', () => {
    // If undici moves lib/dispatcher/pool.js, the import fails; if the file becomes something else,
    // this does. Either way: re-check the legacy handler API the relay depends on (tests below).
    expect(Pool).toBe(PublicPool);
    const version = createRequire(import.meta.url)('undici/package.json').version as string;
    const pinned = createRequire(import.meta.url)('../../package.json').dependencies.undici as string;
    expect(pinned, 'undici must be pinned exactly: the relay reaches into its private files').toBe(version);
  });
});

describe('dispatchRequest (the terminal Handler)', () => {
  it('settles at the head with raw header buffers, keeps body bytes that came before the pipe', async () => {
    const { pool } = await startServer((_req, res) => {
      res.writeHead(201, 'Made', ['X-Case', 'Kept', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
      res.end('the body');
    });
    const response = await dispatchRequest(pool, get('/'), new RequestAbort());
    expect(response.statusCode).toBe(201);
    expect(response.statusText).toBe('Made');
    expect(response.rawHeaders.every((h) => Buffer.isBuffer(h))).toBe(true);
    const names = response.rawHeaders.map(String);
    expect(names.slice(0, 6)).toEqual(['X-Case', 'Kept', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
    // The body arrives while nobody pipes the response: it is kept, not lost or failed.
    await settle(30);
    const { into, done } = pipe(response);
    expect(await done).toBeNull();
    expect(into.text()).toBe('the body');
    expect(into.isEnded()).toBe(true);
  });

  it('reads a body nobody pipes only up to a bound, pausing undici until the pipe', async () => {
    const SIZE = 16 * 1024 * 1024;
    let isSent = false;
    const { pool } = await startServer((_req, res) => {
      res.writeHead(200, ['Content-Length', String(SIZE)]);
      res.end(Buffer.alloc(SIZE, 'x'), () => {
        isSent = true;
      });
    });
    const response = await dispatchRequest(pool, get('/big'), new RequestAbort());
    await settle(100);
    // Had undici ignored the pause (onData returning false), it would have read all 16 MiB by now.
    expect(isSent).toBe(false);
    const chunks: Buffer[] = [];
    const sink: BodySink = {
      write: (chunk) => {
        chunks.push(chunk);
        return true;
      },
      end: () => {},
      once: () => undefined,
    };
    expect(await new Promise((resolve) => response.body.pipeTo(sink, resolve))).toBeNull();
    expect(Buffer.concat(chunks).length).toBe(SIZE);
  });

  it('lets a HEAD response complete before anyone pipes it', async () => {
    const { pool } = await startServer((_req, res) => {
      res.writeHead(200, ['Content-Length', '9']);
      res.end();
    });
    const response = await dispatchRequest(pool, get('/', 'HEAD'), new RequestAbort());
    await settle(10);
    const { into, done } = pipe(response);
    expect(await done).toBeNull();
    expect(into.isEnded()).toBe(true);
    // The connection is free again, and the next request is answered.
    const next = await dispatchRequest(pool, get('/', 'HEAD'), new RequestAbort());
    expect(next.statusCode).toBe(200);
    next.body.discard();
  });

  it('fails at once with the abort’s reason while waiting for the head, and ends the upstream request', async () => {
    const server = await startServer(() => {});
    const abort = new RequestAbort();
    const pending = dispatchRequest(server.pool, get('/slow'), abort);
    await settle(30);
    const why = new ProxyError('timeout', 'proxy: request took longer than 30ms');
    abort.abort(why);
    await expect(pending).rejects.toBe(why);
    await settle(30);
    expect(server.closed).toEqual(['/slow']);
  });

  it('fails a request queued for a connection as soon as it is aborted, not when the connect ends', async () => {
    // A connect that never completes, like an upstream that swallows SYNs until the connect timeout.
    const pool = new Pool('http://127.0.0.1:9', { connect: () => {} });
    cleanups.push(() => pool.destroy());
    const abort = new RequestAbort();
    const pending = dispatchRequest(pool, get('/never'), abort);
    await settle(10);
    abort.abort(new ProxyError('overloaded', 'proxy: gave up'));
    await expect(pending).rejects.toMatchObject({ reason: 'overloaded' });
  });

  it('drops a discarded body with its connection; the pool serves the next request', async () => {
    const { pool, closed } = await startServer((req, res) => {
      res.writeHead(200);
      if (req.url === '/endless') res.write('x'.repeat(1024));
      else res.end('ok');
    });
    const endless = await dispatchRequest(pool, get('/endless'), new RequestAbort());
    endless.body.discard();
    const next = await dispatchRequest(pool, get('/next'), new RequestAbort());
    const { into, done } = pipe(next);
    expect(await done).toBeNull();
    expect(into.text()).toBe('ok');
    expect(closed).toEqual(['/endless']);
  });

  it('reports a body that breaks off to the pipe’s done, not as a response', async () => {
    const { pool } = await startServer((_req, res) => {
      res.writeHead(200, ['Content-Length', '100']);
      res.write('partial');
      setImmediate(() => res.destroy());
    });
    const response = await dispatchRequest(pool, get('/'), new RequestAbort());
    const { done } = pipe(response);
    expect(await done).toBeInstanceOf(Error);
  });
});

describe('serveRequest', () => {
  /** A front server that serves each request through `handler`, recording outcomes. */
  async function front(handler: Handler) {
    const outcomes: RelayOutcome[] = [];
    const { port } = await startServer((req, res) =>
      serveRequest(handler, { ...get(req.url ?? '/'), method: req.method ?? 'GET' }, res, (o) =>
        outcomes.push(o),
      ),
    );
    const ask = (path: string) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => {
            body += c.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        });
        req.on('error', reject);
        req.end();
      });
    return { ask, outcomes };
  }

  it('writes the upstream’s own answer unaltered, a 503 included, without x-sigil-error', async () => {
    const upstream = await startServer((_req, res) => {
      res.writeHead(503, ['Retry-After', '1', 'Connection', 'keep-alive', 'Content-Length', '4']);
      res.end('busy');
    });
    const { ask, outcomes } = await front((request, signal) =>
      dispatchRequest(upstream.pool, request, signal),
    );
    const answer = await ask('/');
    expect(answer.status).toBe(503);
    expect(answer.body).toBe('busy');
    expect(answer.headers['retry-after']).toBe('1');
    expect(answer.headers['x-sigil-error']).toBeUndefined();
    expect(outcomes).toEqual([{ responseClass: '5xx', error: null }]);
  });

  it('answers a ProxyError with its status, x-sigil-error and a one-line body', async () => {
    const failure = new ProxyError('circuit-open', 'proxy: upstream "orders" is failing');
    const { ask, outcomes } = await front(async () => {
      throw failure;
    });
    const answer = await ask('/');
    expect(answer.status).toBe(503);
    expect(answer.headers['x-sigil-error']).toBe('circuit-open');
    expect(answer.body).toBe('sigil proxy: circuit-open\n');
    expect(outcomes).toEqual([{ responseClass: '5xx', error: failure }]);
  });

  it('answers 502 when a handler throws instead of rejecting', async () => {
    const { ask } = await front(() => {
      throw new Error('a bug in a layer');
    });
    const answer = await ask('/');
    expect(answer.status).toBe(502);
    expect(answer.headers['x-sigil-error']).toBe('upstream-failed');
  });
});
