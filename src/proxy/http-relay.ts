// Relays one HTTP/1.1 exchange from a node:http server request to an undici Pool, raw headers both
// ways and backpressure both ways. Used by the inbound (to the app) and outbound (to the upstream
// sidecar) listeners alike, in two halves: `dispatchRequest` is the request pipeline's terminal
// Handler (resilience/layer.ts), `serveRequest` runs a Handler for a node:http request and writes
// what it settles with. It uses undici's legacy dispatch handler on purpose: onHeaders gets the
// raw header buffers, while the newer onResponseStart API parses them into an object per response
// that we would never read (the newer path's raw form is controller.rawHeaders, should this move).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type { Dispatcher, Pool as UndiciPool } from 'undici';
import { writeAnswer } from '../spiffe/http-client-error.js';
import { proxyErrorResponse, SIGIL_ERROR_HEADER } from './errors.js';
import { filterHeaders } from './headers.js';
import { type ResponseClass, responseClassOf } from './metrics.js';
import type { BodySink, Handler, ProxyRequest, ProxyResponse, ResponseBody } from './resilience/layer.js';
import { RequestAbort, type RequestSignal } from './resilience/request-signal.js';

/**
 * undici's Pool, loaded from its own file: `import { Pool } from 'undici'` evaluates all of undici
 * (fetch, WebSocket, cache, mock agents, 110 modules) and costs each sidecar about 8 MB more
 * resident memory for classes it never uses. Typed as the package's Pool, which it is.
 */
export const Pool: typeof UndiciPool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js');
export type Pool = UndiciPool;

export interface RelayOutcome {
  readonly responseClass: ResponseClass;
  /** The upstream failure when there was no response (`responseClass` is then the proxy's own answer). */
  readonly error: unknown;
}

/**
 * Sends `req`'s body to `path` with `headers` (already normalized and filtered) through
 * `dispatcher`; calls `done` once, however it ends. The bare terminal with no layers (the inbound
 * listener's relay to its app).
 */
export function relayRequest(
  dispatcher: Dispatcher,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  headers: { readonly headers: string[]; readonly hasBody: boolean },
  done: (outcome: RelayOutcome) => void,
): void {
  const request: ProxyRequest = {
    method: req.method ?? 'GET',
    path,
    headers: headers.headers,
    body: headers.hasBody ? req : null,
  };
  serveRequest((r, signal) => dispatchRequest(dispatcher, r, signal), request, res, done);
}

/**
 * Runs `handler` for one request and writes what it settles with to `res`: the upstream's response
 * as it came (hop-by-hop fields removed), or the mapped error (errors.ts) with `x-sigil-error`.
 * The client leaving aborts the handler's signal. Calls `done` once, however it ends.
 */
export function serveRequest(
  handler: Handler,
  request: ProxyRequest,
  res: ServerResponse,
  done: (outcome: RelayOutcome) => void,
): void {
  const exchange = new ServedExchange(res, done);
  res.once('close', exchange.onClientClose);
  let response: Promise<ProxyResponse>;
  try {
    response = handler(request, exchange.signal);
  } catch (err) {
    // A Handler must not throw, but a throw here would escape into node:http's 'request' event.
    exchange.onFailure(err);
    return;
  }
  response.then(exchange.onResponse, exchange.onFailure);
}

/**
 * The terminal Handler: dispatches `request` to `dispatcher` and settles once the response head
 * arrived (its body then waits, bounded, for the consumer) or with the failure. An abort of `signal`
 * aborts the upstream request, with the abort reason when that is an Error.
 */
export function dispatchRequest(
  dispatcher: Dispatcher,
  request: ProxyRequest,
  signal: RequestSignal,
): Promise<ProxyResponse> {
  return new Promise<ProxyResponse>((resolve, reject) => {
    dispatcher.dispatch(
      {
        path: request.path,
        method: request.method,
        // undici only reads the list.
        headers: request.headers as string[],
        body: request.body,
      },
      new UpstreamExchange(resolve, reject, signal),
    );
  });
}

/** Writes a short proxy-generated error response: status, `x-sigil-error`, a one-line body. */
export function respondWithError(res: ServerResponse, status: number, error: string, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${text}\n`;
  res.writeHead(status, [
    SIGIL_ERROR_HEADER,
    error,
    'content-type',
    'text/plain; charset=utf-8',
    'content-length',
    String(Buffer.byteLength(body)),
  ]);
  res.end(body);
}

/** The raw HTTP/1.1 request head for an upgrade relayed by hand (undici does not pipe upgrades to a socket we own). */
export function requestHead(method: string | undefined, target: string, headers: readonly string[]): string {
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** Refuses an upgrade on its raw socket (no ServerResponse exists for upgrades). */
export function refuseUpgrade(socket: Duplex, status: number, error: string, text: string): void {
  writeAnswer(socket, {
    status,
    headers: { [SIGIL_ERROR_HEADER]: error, 'content-type': 'text/plain; charset=utf-8' },
    body: `${text}\n`,
  });
}

/** One request served to a node:http client: writes the response or the error, reports the outcome once. */
class ServedExchange {
  readonly signal = new RequestAbort();
  private isFinished = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly done: (outcome: RelayOutcome) => void,
  ) {}

  readonly onResponse = (response: ProxyResponse): void => {
    if (this.isFinished) {
      // The client left while the head was on its way.
      response.body.discard();
      return;
    }
    const res = this.res;
    res.writeHead(response.statusCode, response.statusText, filterHeaders(response.rawHeaders).headers);
    response.body.pipeTo(res, (error) => {
      if (error === null) {
        this.finish({ responseClass: responseClassOf(res.statusCode), error: null });
        return;
      }
      if (this.isFinished) return;
      res.destroy(error);
      this.finish({ responseClass: 'error', error });
    });
  };

  readonly onFailure = (err: unknown): void => {
    if (this.isFinished) return;
    const mapped = proxyErrorResponse(err);
    respondWithError(this.res, mapped.status, mapped.error, `sigil proxy: ${mapped.error}`);
    this.finish({ responseClass: responseClassOf(mapped.status), error: err });
  };

  readonly onClientClose = (): void => {
    if (this.isFinished) return;
    // The client left before the response completed: stop the upstream request rather than
    // reading a body nobody will receive.
    this.finish({ responseClass: 'error', error: new Error('client closed the connection') });
    this.signal.abort();
  };

  private finish(outcome: RelayOutcome): void {
    if (this.isFinished) return;
    this.isFinished = true;
    this.done(outcome);
  }
}

type ExchangeState = 'waiting' | 'headers' | 'piping' | 'complete' | 'failed' | 'discarded';

/**
 * Body bytes an exchange keeps while nobody pipes its response yet; past this it pauses undici's
 * parser and the rest waits in the kernel. The consumer normally attaches a microtask after the head,
 * so this holds at most what the parser already had from the same read.
 */
const MAX_UNPIPED_BODY_BYTES = 64 * 1024;

/**
 * undici's side of one upstream request, and the body of its response. Body bytes that arrive
 * before `pipeTo` are kept up to MAX_UNPIPED_BODY_BYTES, then the parser is paused until `pipeTo`:
 * bounded however long a layer holds the response. It does not pause at every head (onHeaders
 * returning false), which would cost each response a pause, a socket unshift and a resume: about
 * 3 µs of a relay's ~50, measured.
 */
class UpstreamExchange implements Dispatcher.DispatchHandler, ResponseBody {
  private state: ExchangeState = 'waiting';
  private abort: ((err?: Error) => void) | undefined;
  private resume: (() => void) | undefined;
  private isPaused = false;
  private pending: Buffer[] | undefined;
  private pendingBytes = 0;
  private sink: BodySink | undefined;
  private done: ((error: Error | null) => void) | undefined;
  private error: Error | null = null;
  // `resume` belongs to the connection, which serves the next request once this one is over: call it
  // only while this body is still being read.
  private readonly onDrain = () => {
    if (this.state === 'piping') this.resume?.();
  };
  private readonly onAbort = (reason: unknown) => {
    const err = abortError(reason);
    // Settle now: a request still queued for a connection would otherwise wait for the connect.
    if (this.state === 'waiting') {
      this.state = 'failed';
      this.reject(err);
    }
    this.abort?.(err);
  };

  constructor(
    private readonly resolve: (response: ProxyResponse) => void,
    private readonly reject: (err: unknown) => void,
    private readonly signal: RequestSignal,
  ) {
    signal.onAbort(this.onAbort);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    if (this.signal.aborted) abort(abortError(this.signal.reason));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx interim responses (100 Continue) are node:http's business with the client; skip them.
    if (statusCode < 200) return true;
    this.resume = resume;
    this.state = 'headers';
    this.resolve({ statusCode, statusText, rawHeaders, body: this });
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.state === 'piping') {
      if (this.sink!.write(chunk)) return true;
      this.sink!.once('drain', this.onDrain);
      return false;
    }
    if (this.pending === undefined) this.pending = [chunk];
    else this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < MAX_UNPIPED_BODY_BYTES) return true;
    this.isPaused = true;
    return false;
  }

  onComplete(): void {
    if (this.state === 'piping') {
      this.state = 'complete';
      this.sink!.end();
      this.done!(null);
    } else if (this.state === 'headers') {
      this.state = 'complete';
    }
  }

  onError(err: Error): void {
    const state = this.state;
    if (state === 'complete' || state === 'failed' || state === 'discarded') return;
    this.state = 'failed';
    if (state === 'waiting') this.reject(err);
    else if (state === 'piping') this.done!(err);
    else this.error = err;
  }

  pipeTo(sink: BodySink, done: (error: Error | null) => void): void {
    this.sink = sink;
    this.done = done;
    let isWritable = true;
    const pending = this.pending;
    if (pending !== undefined) {
      this.pending = undefined;
      for (const chunk of pending) isWritable = sink.write(chunk);
    }
    if (this.state === 'complete') {
      sink.end();
      done(null);
    } else if (this.state === 'failed') {
      done(this.error ?? new Error('upstream response failed'));
    } else {
      this.state = 'piping';
      if (!this.isPaused) return;
      this.isPaused = false;
      if (isWritable) this.resume?.();
      else sink.once('drain', this.onDrain);
    }
  }

  discard(): void {
    this.pending = undefined;
    if (this.state !== 'headers') return;
    this.state = 'discarded';
    this.abort?.();
  }
}

/** The error an aborted upstream request fails with: the abort's reason when it is one. */
function abortError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error('request aborted', { cause: reason });
}
