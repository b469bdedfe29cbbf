// Keep-alive connections to one upstream (the inbound sidecar over mTLS, or the app in plaintext),
// one request at a time each (no pipelining), reused last-in first-out so the warmest connection
// serves the next request. Each connection reads responses with its own llhttp parser. The pool
// has no cap and no idle timer: the peer's own keep-alive timeout closes idle connections, and a
// closed one leaves the pool. It does not retry: a request on a connection that fails is reported.
import type { Duplex } from 'node:stream';
import { keepsAliveAfterHead } from './message-head.js';
import { type MessageHead, MessageParser, type ParseError } from './native-parser.js';

/** The exchange a connection is serving: where its response goes. */
export interface ResponseHandler {
  /** A response to HEAD has no body whatever its head says. */
  readonly isHead: boolean;
  /**
   * Called after each batch of response bytes is parsed, if the handler was given any: the handler
   * corks the client socket on its first write of a batch, and uncorks it here.
   */
  uncork(): void;
  onResponseHead(head: MessageHead): void;
  onResponseBody(chunk: Buffer): void;
  /** The response is complete; the connection is back in the pool if it can be reused. */
  onResponseEnd(): void;
  /** The connection failed or closed before the response was complete. */
  onUpstreamFailure(): void;
}

export class UpstreamPool {
  readonly #connect: () => Duplex;
  readonly #idle: UpstreamConnection[] = [];

  readonly #consume: boolean;

  /**
   * `connect` opens a new connection; writes before it is established are queued by the socket.
   * `consume`: parsers read the sockets' native streams themselves (see MessageParser.consume).
   */
  constructor(connect: () => Duplex, options: { readonly consume?: boolean } = {}) {
    this.#connect = connect;
    this.#consume = options.consume ?? false;
  }

  /** An idle connection, or a new one, serving `handler` from now on. */
  acquire(handler: ResponseHandler): UpstreamConnection {
    const connection = this.#idle.pop() ?? new UpstreamConnection(this, this.#connect(), this.#consume);
    connection.serve(handler);
    return connection;
  }

  /** Idle connections now (for tests). */
  get idleCount(): number {
    return this.#idle.length;
  }

  release(connection: UpstreamConnection): void {
    this.#idle.push(connection);
  }

  forget(connection: UpstreamConnection): void {
    const at = this.#idle.indexOf(connection);
    if (at >= 0) this.#idle.splice(at, 1);
  }
}

export class UpstreamConnection {
  readonly socket: Duplex;
  readonly #pool: UpstreamPool;
  readonly #parser: MessageParser;
  #handler: ResponseHandler | null = null;
  /** The handler given response bytes in the current batch: its client writes are corked until the batch ends. */
  #touched: ResponseHandler | null = null;
  #requestSent = false;
  #keepAlive = false;
  /** The message being parsed is a 1xx: it is dropped, and so is its end. */
  #informational = false;
  #dead = false;

  constructor(pool: UpstreamPool, socket: Duplex, consume: boolean) {
    this.#pool = pool;
    this.socket = socket;
    this.#parser = new MessageParser('response', {
      onHead: (head) => this.#onHead(head),
      onBody: (chunk) => this.#onBody(chunk),
      onEnd: () => this.#onEnd(),
      onExecuted: (err) => this.#afterBatch(err),
    });
    if (!consume || !this.#parser.consume(socket)) socket.on('data', (data: Buffer) => this.#onData(data));
    // After 'end' the parser is told, so that a body read until close completes.
    socket.on('end', () => this.#fail(this.#parser.finish() === undefined));
    socket.on('error', () => this.#fail(false));
    socket.on('close', () => this.#fail(false));
  }

  serve(handler: ResponseHandler): void {
    this.#handler = handler;
    this.#requestSent = false;
  }

  /** The whole request has been written. */
  requestSent(): void {
    this.#requestSent = true;
  }

  /** The exchange is abandoned mid-message (the client left): the connection cannot be reused. */
  abort(): void {
    this.#handler = null;
    this.socket.destroy();
  }

  #onData(data: Buffer): void {
    if (this.#handler === null) {
      // Bytes on an idle connection are not a response to anything: the stream is out of step.
      this.socket.destroy();
      return;
    }
    this.#afterBatch(this.#parser.execute(data));
  }

  /** Flushes what the batch wrote to the client; kept even when the response ended within the batch. */
  #afterBatch(err: ParseError | undefined): void {
    const touched = this.#touched;
    this.#touched = null;
    touched?.uncork();
    if (err !== undefined) this.socket.destroy();
  }

  /** Stops or restarts reading responses (the client reads slower than the upstream answers). */
  setReading(isReading: boolean): void {
    this.#parser.setReading(this.socket, isReading);
  }

  #onHead(head: MessageHead): boolean {
    const handler = this.#handler;
    if (handler === null) return true;
    if (head.status < 200) {
      // 100 Continue cannot come (Expect is not forwarded); 101 would switch protocols: not relayed.
      if (head.status === 101 || head.upgrade) this.socket.destroy();
      this.#informational = true;
      return false;
    }
    this.#keepAlive = head.shouldKeepAlive || (handler.isHead && keepsAliveAfterHead(head));
    this.#touched = handler;
    handler.onResponseHead(head);
    return handler.isHead;
  }

  #onBody(chunk: Buffer): void {
    const handler = this.#handler;
    if (handler === null) return;
    this.#touched = handler;
    handler.onResponseBody(chunk);
  }

  #onEnd(): void {
    if (this.#informational) {
      this.#informational = false;
      return;
    }
    const handler = this.#handler;
    this.#handler = null;
    // A response that ends before its request was fully sent leaves the stream mid-message.
    if (this.#keepAlive && this.#requestSent && !this.#dead) this.#pool.release(this);
    else this.socket.destroy();
    if (handler === null) return;
    this.#touched = handler;
    handler.onResponseEnd();
  }

  /** The connection is gone; `clean` when the peer closed it after a complete message. */
  #fail(clean: boolean): void {
    if (!clean || this.#handler !== null) this.socket.destroy();
    if (this.#dead) return;
    this.#dead = true;
    this.#pool.forget(this);
    this.#parser.close();
    const handler = this.#handler;
    this.#handler = null;
    handler?.onUpstreamFailure();
  }
}
