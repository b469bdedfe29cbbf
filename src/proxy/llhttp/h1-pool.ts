// Keep-alive HTTP/1.1 connections to one upstream, driven by Node's native llhttp instead of
// undici: the first piece of moving the h1 data path off node:http + undici (issue 14). It takes
// the same dispatch(options, handler) call the resilience stack makes of undici's Pool
// (resilience/exchange.ts ExchangeHandler), one request per connection at a time (pipelining 1),
// connections reused last-in first-out. Failures carry undici's error codes on purpose
// (UND_ERR_SOCKET, UND_ERR_ABORTED): retry-policy.ts and errors.ts classify by them. It does not do
// upgrades, CONNECT, Expect: 100-continue, request trailers, or headers/body timeouts (the
// resilience layers' timeouts apply from above); it is not wired into the listeners yet.
import type { Duplex, Readable } from 'node:stream';
import type { Clock } from '../../spiffe/clock.js';
import type { ExchangeHandler } from '../resilience/exchange.js';
import { type MessageHead, MessageParser } from './native-parser.js';

export interface H1PoolOptions {
  /** Opens a connection (TLS to a peer sidecar, plaintext to the app); writes before it is up are queued. */
  readonly connect: () => Duplex;
  /** The Host field sent when the request has none, e.g. `127.0.0.1:8080` (undici sends its origin's). */
  readonly host: string;
  readonly clock: Clock;
  /** An idle connection is closed after this, in ms (undici's keepAliveTimeout). */
  readonly keepAliveTimeoutMs: number;
}

export interface H1DispatchOptions {
  readonly method: string;
  readonly path: string;
  /** Flat name/value list, hop-by-hop fields already removed. */
  readonly headers: readonly string[];
  /** Null: no body. A Buffer goes out with its length; a stream by its Content-Length, else chunked. */
  readonly body: Buffer | Readable | null;
}

/** undici's codes, so that the retry policy and the error table read these failures as they read undici's. */
export type H1ErrorCode = 'UND_ERR_SOCKET' | 'UND_ERR_ABORTED' | 'UND_ERR_DESTROYED';

export class H1Error extends Error {
  constructor(
    readonly code: H1ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'H1Error';
  }
}

export class H1Pool {
  readonly #options: H1PoolOptions;
  readonly #idle: H1Connection[] = [];
  readonly #busy = new Set<H1Connection>();
  #isClosing = false;

  constructor(options: H1PoolOptions) {
    this.#options = options;
  }

  /** Sends one request; the handler hears of it exactly as from undici's Pool.dispatch. */
  dispatch(options: H1DispatchOptions, handler: ExchangeHandler): boolean {
    if (this.#isClosing) {
      handler.onError(new H1Error('UND_ERR_DESTROYED', 'h1 pool: the pool is closed'));
      return false;
    }
    const connection = this.#idle.pop() ?? new H1Connection(this, this.#options);
    this.#busy.add(connection);
    connection.send(options, handler);
    return true;
  }

  /** Idle connections now (for tests and metrics). */
  get idleCount(): number {
    return this.#idle.length;
  }

  /** Graceful: idle connections close now, busy ones once their exchange ends. */
  async close(): Promise<void> {
    this.#isClosing = true;
    for (const connection of this.#idle.splice(0)) connection.socket.end();
  }

  /** Every connection closes now; exchanges in flight fail. */
  async destroy(): Promise<void> {
    this.#isClosing = true;
    for (const connection of [...this.#idle.splice(0), ...this.#busy]) connection.socket.destroy();
  }

  /** @internal A connection whose exchange ended cleanly. */
  release(connection: H1Connection): void {
    this.#busy.delete(connection);
    if (this.#isClosing) connection.socket.end();
    else this.#idle.push(connection);
  }

  /** @internal A connection that closed. */
  forget(connection: H1Connection): void {
    this.#busy.delete(connection);
    const at = this.#idle.indexOf(connection);
    if (at >= 0) this.#idle.splice(at, 1);
  }
}

/** One keep-alive connection: at most one exchange at a time. */
class H1Connection {
  readonly socket: Duplex;
  readonly #pool: H1Pool;
  readonly #options: H1PoolOptions;
  readonly #parser: MessageParser;
  #exchange: H1Exchange | null = null;
  #cancelIdleTimer: (() => void) | null = null;
  #isDead = false;

  constructor(pool: H1Pool, options: H1PoolOptions) {
    this.#pool = pool;
    this.#options = options;
    this.socket = options.connect();
    this.#parser = new MessageParser('response', {
      onHead: (head) => this.#exchange?.onHead(head) ?? true,
      onBody: (chunk) => this.#exchange?.onBody(chunk),
      onEnd: () => this.#exchange?.onEnd(),
    });
    this.socket.on('data', (data: Buffer) => this.#onData(data));
    this.socket.on('end', () => {
      // finish() completes a body read until close; a message cut short fails as undici reports
      // it ("other side closed", UND_ERR_SOCKET), not with llhttp's HPE_INVALID_EOF_STATE.
      this.#parser.finish();
      this.#fail(undefined);
    });
    this.socket.on('error', (err: Error) => this.#fail(err));
    this.socket.on('close', () => this.#fail(undefined));
  }

  send(options: H1DispatchOptions, handler: ExchangeHandler): void {
    this.#cancelIdleTimer?.();
    this.#cancelIdleTimer = null;
    this.#exchange = new H1Exchange(this, handler);
    this.#exchange.start(options, this.#options.host);
  }

  /** Stops or restarts reading the response (the handler asked for a pause). */
  setReading(isReading: boolean): void {
    this.#parser.setReading(this.socket, isReading);
  }

  /** The exchange ended; `reusable` when both messages were complete and the upstream keeps the connection. */
  finished(reusable: boolean): void {
    this.#exchange = null;
    if (!reusable || this.#isDead) {
      this.socket.destroy();
      return;
    }
    // A handler that paused and was resumed with the end already read leaves reading stopped.
    this.setReading(true);
    this.#cancelIdleTimer = this.#options.clock.setTimer(this.#options.keepAliveTimeoutMs, () =>
      this.socket.end(),
    );
    this.#pool.release(this);
  }

  #onData(data: Buffer): void {
    if (this.#exchange === null) {
      // Bytes on an idle connection answer nothing: the stream is out of step.
      this.socket.destroy();
      return;
    }
    const err = this.#parser.execute(data);
    if (err !== undefined) this.#fail(err);
  }

  #fail(err: Error | undefined): void {
    const exchange = this.#exchange;
    if (err === undefined && exchange === null && this.#isDead) return;
    if (!this.#isDead) {
      this.#isDead = true;
      this.#cancelIdleTimer?.();
      this.#pool.forget(this);
      this.#parser.close();
      this.socket.destroy();
    }
    this.#exchange = null;
    // As undici: a socket or parse error reaches the request as it is (ECONNREFUSED, ECONNRESET,
    // HPE_*), a close without one as UND_ERR_SOCKET.
    exchange?.fail(err ?? new H1Error('UND_ERR_SOCKET', 'h1 pool: the upstream closed the connection'));
  }
}

const BODY_CHUNK_END = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

/** One request and its response on one connection. */
class H1Exchange {
  readonly #connection: H1Connection;
  readonly #handler: ExchangeHandler;
  #isRequestSent = false;
  #isDone = false;
  #isInformational = false;
  #isHead = false;
  #keepAlive = false;
  #body: Readable | null = null;
  /**
   * The handler asked for a pause (onHeaders or onData returned false). Reading stops, but the read
   * being parsed goes on to its end: what it still holds waits in `#held` until `resume`.
   */
  #isPaused = false;
  #held: (Buffer | null)[] = [];
  readonly #resume = () => this.#onResume();

  constructor(connection: H1Connection, handler: ExchangeHandler) {
    this.#connection = connection;
    this.#handler = handler;
  }

  start(options: H1DispatchOptions, host: string): void {
    this.#handler.onConnect((err) =>
      this.fail(err ?? new H1Error('UND_ERR_ABORTED', 'h1 pool: request aborted')),
    );
    if (this.#isDone) return;
    this.#isHead = options.method === 'HEAD';
    const socket = this.#connection.socket;
    let head = `${options.method} ${options.path} HTTP/1.1\r\n`;
    let hasHost = false;
    let hasLength = false;
    const { headers, body } = options;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name.length === 4 && name.toLowerCase() === 'host') hasHost = true;
      else if (name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
      head += `${name}: ${headers[i + 1]}\r\n`;
    }
    if (!hasHost) head += `host: ${host}\r\n`;
    if (body === null) {
      socket.write(`${head}\r\n`);
      this.#isRequestSent = true;
    } else if (Buffer.isBuffer(body)) {
      socket.cork();
      socket.write(hasLength ? `${head}\r\n` : `${head}content-length: ${body.length}\r\n\r\n`);
      socket.write(body);
      socket.uncork();
      this.#isRequestSent = true;
    } else {
      socket.write(hasLength ? `${head}\r\n` : `${head}transfer-encoding: chunked\r\n\r\n`);
      this.#streamBody(body, !hasLength);
    }
  }

  /** Copies `body` upstream with backpressure; chunked unless the request declared its length. */
  #streamBody(body: Readable, isChunked: boolean): void {
    const socket = this.#connection.socket;
    this.#body = body;
    const onDrain = () => body.resume();
    body.on('data', (chunk: Buffer) => {
      if (this.#isDone) return;
      let isFull: boolean;
      if (isChunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`);
        socket.write(chunk);
        isFull = !socket.write(BODY_CHUNK_END);
        socket.uncork();
      } else isFull = !socket.write(chunk);
      if (isFull) {
        body.pause();
        socket.once('drain', onDrain);
      }
    });
    body.once('end', () => {
      if (this.#isDone) return;
      if (isChunked) socket.write(LAST_CHUNK);
      this.#isRequestSent = true;
    });
    body.once('error', (err: Error) => this.fail(err));
  }

  onHead(head: MessageHead): boolean {
    if (this.#isDone) return true;
    if (head.status < 200) {
      // 100 Continue cannot come (Expect is not sent) and 101 is not relayed here; both are skipped.
      this.#isInformational = true;
      return false;
    }
    this.#keepAlive = head.shouldKeepAlive || (this.#isHead && keepsAliveAfterHead(head));
    const raw = head.rawHeaders.map((item) => Buffer.from(item, 'latin1'));
    if (!this.#handler.onHeaders(head.status, raw, this.#resume, head.statusText)) this.#pause();
    // A response to HEAD has no body whatever its Content-Length says; llhttp cannot know the method.
    return this.#isHead;
  }

  onBody(chunk: Buffer): void {
    if (this.#isDone) return;
    if (this.#isPaused) this.#held.push(chunk);
    else if (!this.#handler.onData(chunk)) this.#pause();
  }

  onEnd(): void {
    if (this.#isInformational) {
      this.#isInformational = false;
      return;
    }
    if (this.#isDone) return;
    if (this.#isPaused) {
      this.#held.push(null);
      return;
    }
    this.#complete();
  }

  #pause(): void {
    this.#isPaused = true;
    this.#connection.setReading(false);
  }

  /** Delivers what was held, in order, until the handler pauses again; then reading resumes. */
  #onResume(): void {
    if (this.#isDone || !this.#isPaused) return;
    this.#isPaused = false;
    while (this.#held.length > 0) {
      const chunk = this.#held.shift()!;
      if (chunk === null) {
        this.#complete();
        return;
      }
      if (!this.#handler.onData(chunk)) {
        this.#isPaused = true;
        return;
      }
    }
    this.#connection.setReading(true);
  }

  #complete(): void {
    this.#isDone = true;
    // A response that ends before its request was fully sent leaves the stream mid-message.
    this.#connection.finished(this.#keepAlive && this.#isRequestSent);
    this.#handler.onComplete(null);
  }

  /** Ends the exchange with `err`, once; the connection cannot be reused. */
  fail(err: Error): void {
    if (this.#isDone) return;
    this.#isDone = true;
    this.#body?.destroy();
    this.#connection.finished(false);
    this.#handler.onError(err);
  }
}

/**
 * llhttp decides keep-alive before it learns that a response to HEAD has no body, so a HEAD response
 * without Content-Length reads as close-delimited. Like undici, trust the response's own
 * `Connection: keep-alive` then (HTTP/1.1 without `Connection: close` too, as that is its default).
 */
export function keepsAliveAfterHead(head: MessageHead): boolean {
  let connection = head.versionMinor === 1 ? 'keep-alive' : 'close';
  for (let i = 0; i < head.rawHeaders.length; i += 2) {
    if (head.rawHeaders[i]!.toLowerCase() === 'connection')
      connection = head.rawHeaders[i + 1]!.toLowerCase();
  }
  return connection.split(',').some((token) => token.trim() === 'keep-alive');
}
