// Relays one HTTP/1.1 exchange from a node:http server request to an undici Pool, raw headers both
// ways and backpressure both ways. Used by the inbound (to the app) and outbound (to the upstream
// sidecar) listeners alike. It uses undici's legacy dispatch handler on purpose: onHeaders gets the
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
 * `dispatcher`; calls `done` once, however it ends.
 */
export function relayRequest(
  dispatcher: Dispatcher,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  headers: { readonly headers: string[]; readonly hasBody: boolean },
  done: (outcome: RelayOutcome) => void,
): void {
  const handler = new ResponseRelay(res, done);
  dispatcher.dispatch(
    {
      path,
      method: req.method ?? 'GET',
      headers: headers.headers,
      // A body-less request must not become a chunked one: undici would send a stream as chunks.
      body: headers.hasBody ? req : null,
    },
    handler,
  );
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

const RELAY = Symbol('sigil.responseRelay');
type RelayedResponse = ServerResponse & { [RELAY]: ResponseRelay };

function onResponseClose(this: ServerResponse): void {
  (this as RelayedResponse)[RELAY].onClientClose();
}

/**
 * Writes one upstream response to a node:http client as it arrives, or the proxy's own answer for a
 * failure, and stops the upstream request if the client leaves. The handler at the end of every
 * request stack (resilience/exchange.ts).
 */
export class ResponseRelay implements Dispatcher.DispatchHandler {
  private abort: ((err?: Error) => void) | undefined;
  private resume: (() => void) | undefined;
  private isFinished = false;
  private readonly onDrain = () => this.resume?.();

  constructor(
    private readonly res: ServerResponse,
    private readonly done: (outcome: RelayOutcome) => void,
  ) {
    // One shared listener that finds its relay on the response: `once` with a closure would cost
    // three allocations per request. A ServerResponse emits 'close' once, so `on` is enough.
    (res as RelayedResponse)[RELAY] = this;
    res.on('close', onResponseClose);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    if (this.isFinished) abort();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx interim responses (100 Continue) are node:http's business with the client; skip them.
    if (statusCode < 200) return true;
    this.resume = resume;
    this.res.writeHead(statusCode, statusText, filterHeaders(rawHeaders).headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.onDrain);
    return false;
  }

  onComplete(): void {
    this.res.end();
    this.finish({ responseClass: responseClassOf(this.res.statusCode), error: null });
  }

  onError(err: Error): void {
    if (this.isFinished) return;
    if (this.res.headersSent) {
      this.res.destroy(err);
      this.finish({ responseClass: 'error', error: err });
      return;
    }
    const mapped = proxyErrorResponse(err);
    respondWithError(this.res, mapped.status, mapped.error, `sigil proxy: ${mapped.error}`);
    this.finish({ responseClass: responseClassOf(mapped.status), error: err });
  }

  /** @internal The response closed: the client left, unless the relay finished first. */
  onClientClose(): void {
    if (this.isFinished) return;
    // The client left before the response completed: stop the upstream request rather than
    // reading a body nobody will receive.
    this.finish({ responseClass: 'error', error: new Error('client closed the connection') });
    this.abort?.();
  }

  private finish(outcome: RelayOutcome): void {
    if (this.isFinished) return;
    this.isFinished = true;
    this.done(outcome);
  }
}
