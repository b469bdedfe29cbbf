// src/proxy/http-relay.ts loads undici's Pool from a private file and drives it with the legacy
// dispatch handler. Neither is undici's public contract, so undici is pinned exactly and this file
// checks, against a real local server, everything the relay and the listeners take from it: the
// path, the class, the pool options, and each handler callback with the arguments the relay reads.
// When it fails after an undici change, the message says what to fix; do not loosen the checks.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { type AddressInfo, connect as netConnect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { type Dispatcher, Pool as PublicPool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { SigilError } from '../spiffe/errors.js';

const PRIVATE_PATH = 'undici/lib/dispatcher/pool.js';
const WHAT_TO_DO =
  'src/proxy/http-relay.ts loads Pool from undici/lib/dispatcher/pool.js (private, not semver-covered) ' +
  'and relays with the legacy handler (onConnect/onHeaders/onData/onComplete/onError). After changing ' +
  'the undici version: fix the path in http-relay.ts (or import { Pool } from "undici", about 8 MB more ' +
  'per sidecar), move ResponseRelay to the API that replaced the broken callback (controller.rawHeaders ' +
  'for raw headers), pin the new version exactly in package.json, and rerun this file';

const requireHere = createRequire(import.meta.url);

/** The Pool http-relay.ts exports, loaded here so that a broken path fails a test with guidance, not the file. */
async function relayPool(): Promise<typeof PublicPool> {
  try {
    return (await import('./http-relay.js')).Pool;
  } catch (err) {
    throw new Error(`http-relay.ts no longer loads undici's Pool (${String(err)}). ${WHAT_TO_DO}`, {
      cause: err,
    });
  }
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ origin: string; port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer(handle);
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, port, connections: () => connections };
}

/** The options the inbound and outbound listeners build their pools with. */
async function makePool(origin: string, connect?: PublicPool.Options['connect']): Promise<PublicPool> {
  const Pool = await relayPool();
  const pool = new Pool(origin, { pipelining: 1, keepAliveTimeout: 30_000, ...(connect && { connect }) });
  cleanups.push(() => pool.destroy());
  return pool;
}

interface Heads {
  readonly statusCode: number;
  readonly rawHeaders: unknown[];
  readonly statusText: string;
  readonly resume: unknown;
}

/** A legacy dispatch handler shaped like http-relay's ResponseRelay, recording every callback. */
class RecordingHandler implements Dispatcher.DispatchHandler {
  readonly calls: string[] = [];
  readonly heads: Heads[] = [];
  readonly chunks: Buffer[] = [];
  error: Error | null = null;
  abort: ((err?: Error) => void) | undefined;
  resume: (() => void) | undefined;
  readonly settled: Promise<void>;
  private settle!: () => void;

  constructor(
    private readonly hooks: {
      onConnect?: (handler: RecordingHandler) => void;
      onData?: (handler: RecordingHandler, chunk: Buffer) => boolean;
    } = {},
  ) {
    this.settled = new Promise((resolve) => (this.settle = resolve));
  }

  onConnect(abort: (err?: Error) => void): void {
    this.calls.push('onConnect');
    this.abort = abort;
    this.hooks.onConnect?.(this);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    this.calls.push(`onHeaders ${statusCode}`);
    this.heads.push({ statusCode, rawHeaders, statusText, resume });
    if (statusCode >= 200) this.resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.calls.at(-1) !== 'onData') this.calls.push('onData');
    this.chunks.push(chunk);
    return this.hooks.onData?.(this, chunk) ?? true;
  }

  onComplete(): void {
    this.calls.push('onComplete');
    this.settle();
  }

  onError(err: Error): void {
    this.calls.push('onError');
    this.error = err;
    this.settle();
  }

  body(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

function dispatch(pool: Dispatcher, options: Dispatcher.DispatchOptions, handler: RecordingHandler) {
  pool.dispatch(options, handler);
  return handler.settled;
}

function headerPairs(raw: readonly unknown[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) pairs.push([String(raw[i]), String(raw[i + 1])]);
  return pairs;
}

describe("undici's private Pool path", () => {
  it('package.json pins undici exactly, to the installed version', () => {
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const installed = (requireHere('undici/package.json') as { version: string }).version;
    expect(
      manifest.dependencies['undici'],
      `package.json must pin undici exactly (no ^ or ~) to the installed ${installed}. ${WHAT_TO_DO}`,
    ).toBe(installed);
  });

  it('still resolves, and http-relay exports the very class undici publishes as Pool', async () => {
    let resolved: string | null = null;
    try {
      resolved = requireHere.resolve(PRIVATE_PATH);
    } catch (err) {
      expect.fail(`${PRIVATE_PATH} no longer resolves (${String(err)}). ${WHAT_TO_DO}`);
    }
    expect(resolved).toMatch(/undici[/\\]lib[/\\]dispatcher[/\\]pool\.js$/);
    expect(
      await relayPool(),
      `the Pool http-relay.ts loads is not the class undici publishes as Pool. ${WHAT_TO_DO}`,
    ).toBe(PublicPool);
  });
});

describe('the dispatch API http-relay.ts relies on', () => {
  it('calls onConnect(abort), onHeaders(status, raw header Buffers, resume, statusText), onData, onComplete, on one kept-alive connection', async () => {
    const seen: { method?: string; url?: string; rawHeaders: string[]; body: string }[] = [];
    const server = await startServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, body });
        res.writeHead(201, 'Made It', ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Mixed-Case', 'Yes']);
        res.end('hello');
      });
    });
    const pool = await makePool(server.origin);
    for (let i = 0; i < 2; i++) {
      const handler = new RecordingHandler();
      await dispatch(
        pool,
        {
          path: '/p?q=1',
          method: 'GET',
          headers: ['X-Dup', '1', 'x-dup', '2', 'Mixed-Case', 'v'],
          body: null,
        },
        handler,
      );
      expect(handler.calls, `the legacy handler callbacks changed. ${WHAT_TO_DO}`).toEqual([
        'onConnect',
        'onHeaders 201',
        'onData',
        'onComplete',
      ]);
      expect(typeof handler.abort, `onConnect no longer passes abort. ${WHAT_TO_DO}`).toBe('function');
      const [head] = handler.heads;
      expect(typeof head!.resume, `onHeaders no longer passes resume. ${WHAT_TO_DO}`).toBe('function');
      expect(head!.statusText, `onHeaders no longer passes the status text. ${WHAT_TO_DO}`).toBe('Made It');
      expect(
        head!.rawHeaders.every((h) => Buffer.isBuffer(h)),
        `onHeaders no longer passes raw header Buffers (http-relay's filterHeaders reads them). ${WHAT_TO_DO}`,
      ).toBe(true);
      const pairs = headerPairs(head!.rawHeaders);
      expect(pairs, `raw response headers lost case or duplicates. ${WHAT_TO_DO}`).toEqual(
        expect.arrayContaining([
          ['Set-Cookie', 'a=1'],
          ['Set-Cookie', 'b=2'],
          ['X-Mixed-Case', 'Yes'],
        ]),
      );
      expect(handler.body()).toBe('hello');
      // onComplete runs before undici marks the connection free; a request sent in the same tick
      // would open a second one, which no relay does (its next request comes from the network).
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Request headers go out as the flat array the relay builds, names in their own case.
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/p?q=1', body: '' });
    expect(headerPairs(seen[0]!.rawHeaders)).toEqual(
      expect.arrayContaining([
        ['X-Dup', '1'],
        ['x-dup', '2'],
        ['Mixed-Case', 'v'],
      ]),
    );
    expect(server.connections(), `the pool no longer keeps connections alive. ${WHAT_TO_DO}`).toBe(1);
  });

  it('streams a Readable request body, and sends no body framing for body: null', async () => {
    const seen: { headers: IncomingMessage['headers']; body: string }[] = [];
    const server = await startServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body });
        res.end();
      });
    });
    const pool = await makePool(server.origin);
    async function* parts() {
      yield 'chunk-1,';
      yield 'chunk-2';
    }
    await dispatch(
      pool,
      { path: '/up', method: 'PUT', headers: [], body: Readable.from(parts()) },
      new RecordingHandler(),
    );
    await dispatch(pool, { path: '/none', method: 'GET', headers: [], body: null }, new RecordingHandler());
    expect(seen[0]!.body, `a Readable request body is no longer streamed. ${WHAT_TO_DO}`).toBe(
      'chunk-1,chunk-2',
    );
    expect(seen[1]!.headers['transfer-encoding'], `body: null now sends a chunked body. ${WHAT_TO_DO}`).toBe(
      undefined,
    );
    expect(seen[1]!.headers['content-length'] ?? '0').toBe('0');
  });

  it('holds back onData after it returns false, until resume() is called', async () => {
    const payload = Buffer.alloc(1024 * 1024, 'x');
    const server = await startServer((_req, res) => res.end(payload));
    const pool = await makePool(server.origin);
    let isPaused = false;
    let pauses = 0;
    let callsWhilePaused = 0;
    const handler = new RecordingHandler({
      onData: (h) => {
        if (isPaused) callsWhilePaused++;
        isPaused = true;
        pauses++;
        // As the relay does on 'drain': resume later, from outside the callback.
        setImmediate(() => {
          isPaused = false;
          h.resume!();
        });
        return false;
      },
    });
    await dispatch(pool, { path: '/big', method: 'GET', headers: [], body: null }, handler);
    expect(handler.calls.at(-1)).toBe('onComplete');
    expect(Buffer.concat(handler.chunks).length).toBe(payload.length);
    expect(pauses, 'the body arrived in one chunk: the pause was never exercised').toBeGreaterThan(1);
    expect(callsWhilePaused, `onData returning false no longer pauses the response. ${WHAT_TO_DO}`).toBe(0);
  });

  it('abort() from onConnect ends the request with onError and no response', async () => {
    const server = await startServer((_req, res) => res.end('should not be relayed'));
    const pool = await makePool(server.origin);
    const handler = new RecordingHandler({ onConnect: (h) => h.abort!() });
    await dispatch(pool, { path: '/', method: 'GET', headers: [], body: null }, handler);
    expect(handler.calls, `abort() in onConnect no longer cancels the request. ${WHAT_TO_DO}`).toEqual([
      'onConnect',
      'onError',
    ]);
  });

  it('abort() mid-body ends with onError, not onComplete, and closes the upstream exchange', async () => {
    let upstreamClosed!: Promise<boolean>;
    const server = await startServer((_req, res) => {
      upstreamClosed = new Promise((resolve) => res.on('close', () => resolve(res.writableFinished)));
      res.writeHead(200, ['content-length', '100']);
      res.write('first part');
    });
    const pool = await makePool(server.origin);
    const handler = new RecordingHandler({
      onData: (h) => {
        h.abort!();
        return true;
      },
    });
    await dispatch(pool, { path: '/', method: 'GET', headers: [], body: null }, handler);
    expect(handler.calls, `abort() mid-body no longer ends the request with onError. ${WHAT_TO_DO}`).toEqual([
      'onConnect',
      'onHeaders 200',
      'onData',
      'onError',
    ]);
    expect(await upstreamClosed, 'the upstream response should be cut off, not finished').toBe(false);
  });

  it('passes interim 1xx responses to onHeaders before the final one (ResponseRelay skips them)', async () => {
    const server = await startServer((_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.end('final');
    });
    const pool = await makePool(server.origin);
    const handler = new RecordingHandler();
    await dispatch(pool, { path: '/', method: 'GET', headers: [], body: null }, handler);
    expect(handler.calls, `interim responses reach the handler differently now. ${WHAT_TO_DO}`).toEqual([
      'onConnect',
      'onHeaders 103',
      'onHeaders 200',
      'onData',
      'onComplete',
    ]);
    expect(handler.body()).toBe('final');
  });

  it("uses the pool's connect(opts, callback) socket, and hands its error to onError unchanged", async () => {
    const server = await startServer((_req, res) => res.end('via connector'));
    let connects = 0;
    const viaSocket = await makePool('http://upstream.invalid:1', (_opts, callback) => {
      connects++;
      const socket: Socket = netConnect(server.port, '127.0.0.1');
      socket.once('connect', () => callback(null, socket));
      socket.once('error', (err) => callback(err, null));
    });
    const ok = new RecordingHandler();
    await dispatch(viaSocket, { path: '/', method: 'GET', headers: [], body: null }, ok);
    expect(ok.body(), `the pool no longer sends through the connect option's socket. ${WHAT_TO_DO}`).toBe(
      'via connector',
    );
    expect(connects).toBe(1);

    // The outbound connector refuses an upstream with the wrong SPIFFE ID this way; the relay maps
    // the error by its code, so it must arrive as thrown.
    const refusal = new SigilError('ERR_PERMISSION_DENIED', 'proxy: upstream presented the wrong id', {
      reason: 'server-id',
    });
    const refused = await makePool('http://upstream.invalid:1', (_opts, callback) => callback(refusal, null));
    const failed = new RecordingHandler();
    await dispatch(refused, { path: '/', method: 'GET', headers: [], body: null }, failed);
    expect(failed.calls).toEqual(['onError']);
    expect(failed.error, `the connector's error no longer reaches onError as thrown. ${WHAT_TO_DO}`).toBe(
      refusal,
    );
  });
});
