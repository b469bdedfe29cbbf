// H1Pool against undici's Pool, the dispatcher it would replace: the same requests to the same app
// through both, with a handler that records every call, must give the same record (status, raw
// headers, body, completion or error code), connection reuse included.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock, systemClock } from '../../spiffe/clock.js';
import { Pool } from '../http-relay.js';
import type { ExchangeHandler } from '../resilience/exchange.js';
import { type H1DispatchOptions, H1Pool } from './h1-pool.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The app: answers by path; records each request's method, url, framing and body, and counts connections. */
async function startApp() {
  const seen: { method: string; url: string; framing: string; body: string }[] = [];
  let connections = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const framing = req.headers['transfer-encoding'] ?? `length ${req.headers['content-length'] ?? '-'}`;
      seen.push({ method: req.method!, url: req.url!, framing, body: Buffer.concat(chunks).toString() });
      if (req.url === '/no-content') return void res.writeHead(204).end();
      if (req.url === '/chunked') {
        res.writeHead(200, ['X-Part', 'a', 'x-part', 'b']);
        res.write('abc');
        setImmediate(() => res.end('def'));
        return;
      }
      if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial');
        setImmediate(() => res.socket?.destroy());
        return;
      }
      res.writeHead(200, ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
      res.end(`${req.method} ${req.url} ${Buffer.concat(chunks).length}`);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as AddressInfo).port, seen, connections: () => connections };
}

interface Record {
  status?: number;
  headers?: string[];
  body: string;
  end?: string;
}

/** Records one exchange; `pauseOnHeaders` returns false from onHeaders and resumes a turn later. */
function recorder(pauseOnHeaders = false): { handler: ExchangeHandler; done: Promise<Record> } {
  const record: Record = { body: '' };
  let finish: (r: Record) => void;
  const done = new Promise<Record>((resolve) => {
    finish = resolve;
  });
  const handler: ExchangeHandler = {
    onConnect() {},
    onHeaders(status, raw, resume) {
      record.status = status;
      record.headers = raw
        .map(String)
        .filter((_, i, all) => !/^(date|connection|keep-alive)$/i.test(all[i - (i % 2)]!));
      if (!pauseOnHeaders) return true;
      setImmediate(resume);
      return false;
    },
    onData(chunk) {
      record.body += chunk;
      return true;
    },
    onComplete() {
      record.end = 'complete';
      finish(record);
    },
    onError(err) {
      record.end = `error ${(err as { code?: string }).code}`;
      finish(record);
    },
  };
  return { handler, done };
}

type Dispatch = (options: H1DispatchOptions, handler: ExchangeHandler) => unknown;

function undiciPool(port: number): Dispatch {
  const pool = new Pool(`http://127.0.0.1:${port}`, { pipelining: 1, keepAliveTimeout: 30_000 });
  cleanups.push(() => pool.destroy());
  return (options, handler) => pool.dispatch({ ...options, headers: [...options.headers] }, handler);
}

function h1Pool(port: number): Dispatch {
  const pool = new H1Pool({
    connect: () => connect({ host: '127.0.0.1', port, noDelay: true }),
    host: `127.0.0.1:${port}`,
    clock: systemClock,
    keepAliveTimeoutMs: 30_000,
  });
  cleanups.push(() => pool.destroy());
  return (options, handler) => pool.dispatch(options, handler);
}

const get = (path: string): H1DispatchOptions => ({
  method: 'GET',
  path,
  headers: ['Host', 'app'],
  body: null,
});

/** Each scenario: a list of requests sent one after another on one pool. */
const SCENARIOS: Array<[string, () => Array<[H1DispatchOptions, boolean?]>]> = [
  ['two GETs (keep-alive)', () => [[get('/a')], [get('/b?x=1')]]],
  [
    'a Buffer body',
    () => [[{ method: 'POST', path: '/p', headers: ['Host', 'app'], body: Buffer.from('hello') }]],
  ],
  [
    'a stream body without a length (chunked)',
    () => [
      [
        {
          method: 'PUT',
          path: '/s',
          headers: ['Host', 'app'],
          body: Readable.from([Buffer.from('ab'), Buffer.from('cde')]),
        },
      ],
    ],
  ],
  [
    'a stream body with its length',
    () => [
      [
        {
          method: 'POST',
          path: '/l',
          headers: ['Host', 'app', 'Content-Length', '5'],
          body: Readable.from([Buffer.from('ab'), Buffer.from('cde')]),
        },
      ],
    ],
  ],
  ['HEAD, then GET on the same connection', () => [[{ ...get('/h'), method: 'HEAD' }], [get('/after-head')]]],
  ['204', () => [[get('/no-content')], [get('/after-204')]]],
  ['a chunked response with duplicate fields', () => [[get('/chunked')]]],
  ['a paused response, then another request', () => [[get('/chunked'), true], [get('/after-pause')]]],
  [
    'no Host field: the origin is sent',
    () => [[{ method: 'GET', path: '/nohost', headers: [], body: null }]],
  ],
  ['the upstream cuts the response', () => [[get('/cut')], [get('/after-cut')]]],
];

describe('H1Pool answers as undici Pool does', () => {
  it.each(SCENARIOS)('%s', async (name, requests) => {
    const runs = [];
    for (const make of [undiciPool, h1Pool]) {
      const app = await startApp();
      const dispatch = make(app.port);
      const records: Record[] = [];
      for (const [options, pause] of requests()) {
        const { handler, done } = recorder(pause);
        dispatch(options, handler);
        records.push(await done);
      }
      runs.push({ records, seen: app.seen, connections: app.connections() });
    }
    const [undici, h1] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect({ ...h1, connections: 0 }).toEqual({ ...undici, connections: 0 });
    // undici dispatches the next request before it has put the last connection back and opens a
    // second one; H1Pool reuses it unless the exchange broke it.
    expect(h1.connections).toBe(name === 'the upstream cuts the response' ? 2 : 1);
    expect(h1.connections).toBeLessThanOrEqual(undici.connections);
  });

  it('a refused connection fails with the socket error, as undici reports it', async () => {
    const app = await startApp();
    cleanups.pop()!();
    await new Promise((resolve) => setImmediate(resolve));
    const ends = [];
    for (const make of [undiciPool, h1Pool]) {
      const { handler, done } = recorder();
      make(app.port)(get('/refused'), handler);
      ends.push((await done).end);
    }
    expect(ends).toEqual(['error ECONNREFUSED', 'error ECONNREFUSED']);
  });
});

describe('H1Pool connections', () => {
  it('a caller that aborts after the headers ends the exchange with its reason, as undici does', async () => {
    const ends = [];
    for (const make of [undiciPool, h1Pool]) {
      const app = await startApp();
      const { handler, done } = recorder();
      let abort: (err?: Error) => void = () => {};
      const aborting: ExchangeHandler = {
        ...handler,
        onConnect: (a) => {
          abort = a;
        },
        onHeaders: (...args) => {
          handler.onHeaders(...args);
          setImmediate(() => abort());
          return false;
        },
      };
      make(app.port)(get('/chunked'), aborting);
      ends.push((await done).end);
    }
    expect(ends).toEqual(['error UND_ERR_ABORTED', 'error UND_ERR_ABORTED']);
  });

  it('an idle connection closes after keepAliveTimeoutMs on the injected clock, and the next request opens another', async () => {
    const app = await startApp();
    const clock = new ManualClock();
    const pool = new H1Pool({
      connect: () => connect({ host: '127.0.0.1', port: app.port }),
      host: 'app',
      clock,
      keepAliveTimeoutMs: 5_000,
    });
    cleanups.push(() => pool.destroy());
    const send = async (path: string) => {
      const { handler, done } = recorder();
      pool.dispatch(get(path), handler);
      return (await done).end;
    };
    expect(await send('/one')).toBe('complete');
    expect(pool.idleCount).toBe(1);
    await clock.advance(4_999);
    expect(pool.idleCount).toBe(1);
    await clock.advance(1);
    await vi.waitFor(() => expect(pool.idleCount).toBe(0));
    expect(await send('/two')).toBe('complete');
    expect(app.connections()).toBe(2);
  });
});
