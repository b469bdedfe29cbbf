// One client connection of the relay: requests read with llhttp in REQUEST mode, each relayed on a
// pooled upstream connection as soon as its head is complete, body bytes following with
// backpressure, responses written back in request order. A request that llhttp refuses, or one
// with two Host fields, is answered as Sigil's listeners answer it (guarded-http.ts: the same
// status, x-sigil-error and body) and the connection closed. It does not do upgrades, CONNECT,
// timeouts, policy or metrics: it is a floor to measure, not a sidecar.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { REFUSAL_STATUS, SIGIL_ERROR_HEADER } from '../../src/proxy/errors.js';
import { writeAnswer } from '../../src/spiffe/http-client-error.js';
import { type BodyFraming, endBody, requestHead, responseHead, writeBody } from './message-head.js';
import { type MessageHead, MessageParser, type ParseError } from './native-parser.js';
import type { ResponseHandler, UpstreamConnection, UpstreamPool } from './upstream-pool.js';

/** Requests read ahead of the one being answered before the client socket stops being read. */
const MAX_QUEUED_REQUESTS = 1;

type Refusal = 'bad-request' | 'header-too-large' | 'duplicate-host';

/** Relays every request arriving on `socket` through `pool` until either side closes. */
export function serveConnection(socket: Duplex, pool: UpstreamPool, options: ServeOptions = {}): void {
  new Downstream(socket, pool, options.consume ?? false);
}

export interface ServeOptions {
  /** The request parser reads the socket's native stream itself (MessageParser.consume). Defaults to false. */
  readonly consume?: boolean;
}

class Downstream {
  readonly socket: Duplex;
  readonly pool: UpstreamPool;
  readonly #parser: MessageParser;
  /** queue[0] is being answered; later ones were read ahead (a pipelining client). */
  readonly #queue: Exchange[] = [];
  /** The exchange whose request body is being read. */
  #reading: Exchange | null = null;
  #closed = false;
  #paused = false;
  /** The upstream socket whose 'drain' is awaited, so that one listener is added per wait. */
  #awaitedDrain: Duplex | null = null;
  /** Upstream sockets corked during the current batch of parsed bytes. */
  #corked: Duplex[] = [];

  constructor(socket: Duplex, pool: UpstreamPool, consume: boolean) {
    this.socket = socket;
    this.pool = pool;
    this.#parser = new MessageParser('request', {
      onHead: (head) => this.#onHead(head),
      onBody: (chunk) => this.#reading?.requestBody(chunk),
      onEnd: () => this.#onEnd(),
      onExecuted: (err) => this.#afterBatch(err),
    });
    if (!consume || !this.#parser.consume(socket)) socket.on('data', (data: Buffer) => this.#onData(data));
    socket.on('end', () => {
      // A request cut short by the client is abandoned; a client that half-closes after its last
      // request still gets its answers.
      if (this.#reading !== null) this.close();
      else if (this.#queue.length === 0) socket.end();
    });
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
  }

  /** Writes to an upstream inside the current batch, corking it once for the batch. */
  corkUpstream(upstream: Duplex): void {
    if (this.#corked.includes(upstream)) return;
    upstream.cork();
    this.#corked.push(upstream);
  }

  #onData(data: Buffer): void {
    if (this.#closed) return;
    this.#afterBatch(this.#parser.execute(data));
  }

  #afterBatch(err: ParseError | undefined): void {
    this.uncorkUpstreams();
    if (this.#closed) return;
    if (err !== undefined) this.#refuse(kindOf(err));
    else this.#applyBackpressure();
  }

  uncorkUpstreams(): void {
    for (const upstream of this.#corked) upstream.uncork();
    this.#corked.length = 0;
  }

  #onHead(head: MessageHead): boolean {
    if (this.#closed) return true;
    if (head.upgrade) {
      // Upgrades and CONNECT are out of this floor's scope (Sigil relays WebSocket upgrades).
      this.#answer(501, 'upgrade-unsupported');
      return true;
    }
    const request = requestHead(head);
    if (request.hostCount > 1) {
      this.#refuse('duplicate-host');
      return true;
    }
    const exchange = new Exchange(this, head, request.text, request.framing);
    this.#reading = exchange;
    this.#queue.push(exchange);
    if (this.#queue.length === 1) exchange.start();
    return false;
  }

  #onEnd(): void {
    const exchange = this.#reading;
    this.#reading = null;
    exchange?.requestEnd();
  }

  /** Called by the exchange at queue[0] when its response is complete. */
  finished(exchange: Exchange): void {
    this.#queue.shift();
    if (exchange.closeAfter) {
      this.socket.end();
      this.close();
      return;
    }
    const next = this.#queue[0];
    if (next !== undefined) {
      // Outside a batch of request bytes: nothing else will uncork what start() corked.
      next.start();
      this.uncorkUpstreams();
    } else if (this.socket.readableEnded) this.socket.end();
    this.#applyBackpressure();
  }

  /** Stops reading while the upstream cannot take more or too many requests wait; resumes after. */
  #applyBackpressure(): void {
    if (this.#closed) return;
    const upstream = this.#reading?.upstream?.socket;
    const isFull = upstream?.writableNeedDrain === true;
    const blocked = isFull || this.#queue.length > MAX_QUEUED_REQUESTS;
    if (isFull && this.#awaitedDrain !== upstream) {
      // Whether or not reading was already paused (for the queue), only this drain lets it go on.
      this.#awaitedDrain = upstream;
      upstream.once('drain', () => {
        this.#awaitedDrain = null;
        this.#applyBackpressure();
      });
    }
    if (blocked && !this.#paused) {
      this.#paused = true;
      this.#parser.setReading(this.socket, false);
    } else if (!blocked && this.#paused) {
      this.#paused = false;
      this.#parser.setReading(this.socket, true);
    }
  }

  #refuse(kind: Refusal): void {
    this.#answer(REFUSAL_STATUS[kind], kind);
  }

  /**
   * Answers on the raw socket and closes, unless a response is already under way (then just closes).
   * Requests read in full before the bad bytes still go to the app, their answers discarded: node:http
   * has emitted them by then, so Sigil relays them too.
   */
  #answer(status: number, reason: string): void {
    if (this.#closed) return;
    const underway = this.#queue[0]?.responseStarted === true;
    for (const exchange of this.#queue) if (exchange !== this.#reading) exchange.detach();
    this.close();
    if (underway || !this.socket.writable) {
      this.socket.destroy();
      return;
    }
    writeAnswer(this.socket, {
      status,
      headers: { [SIGIL_ERROR_HEADER]: reason, 'content-type': 'text/plain; charset=utf-8' },
      body: `sigil proxy: ${STATUS_CODES[status]!.toLowerCase()}\n`,
    });
  }

  /** Stops relaying: exchanges in flight lose their upstream connections (mid-message, not reusable). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reading = null;
    for (const exchange of this.#queue) if (!exchange.isDetached) exchange.abandon();
    this.#queue.length = 0;
    this.#parser.close();
  }

  get isClosed(): boolean {
    return this.#closed;
  }
}

function kindOf(err: ParseError): Refusal {
  // The same split as src/spiffe/http-client-error.ts makes of node:http's parser errors.
  return err.code === 'HPE_HEADER_OVERFLOW' ? 'header-too-large' : 'bad-request';
}

/** One request and its response. */
class Exchange implements ResponseHandler {
  readonly isHead: boolean;
  readonly closeAfter: boolean;
  readonly #owner: Downstream;
  readonly #clientMinor: number;
  readonly #framing: BodyFraming;
  /** The head and body read before an upstream connection was given (pipelined requests). */
  #pending: (string | Buffer)[] | null;
  #requestEnded = false;
  /** Relayed for the app's sake only: the client was refused, the answer goes nowhere. */
  #detached = false;
  #clientCorked = false;
  #upstreamPaused = false;
  #responseFraming: BodyFraming = 'none';
  responseStarted = false;
  upstream: UpstreamConnection | null = null;

  constructor(owner: Downstream, head: MessageHead, text: string, framing: BodyFraming) {
    this.#owner = owner;
    this.isHead = head.method === 'HEAD';
    this.closeAfter = !head.shouldKeepAlive;
    this.#clientMinor = head.versionMinor;
    this.#framing = framing;
    this.#pending = [text];
  }

  get isDetached(): boolean {
    return this.#detached;
  }

  /** Completes the request upstream without a client (see Downstream's #answer); starts it if queued. */
  detach(): void {
    this.#detached = true;
    if (this.upstream === null) {
      this.start();
      this.#owner.uncorkUpstreams();
    }
  }

  start(): void {
    const upstream = this.#owner.pool.acquire(this);
    this.upstream = upstream;
    this.#owner.corkUpstream(upstream.socket);
    for (const data of this.#pending!) upstream.socket.write(data);
    this.#pending = null;
    if (this.#requestEnded) upstream.requestSent();
  }

  requestBody(chunk: Buffer): void {
    const upstream = this.upstream;
    if (upstream === null) {
      // Not started yet: keep the framed bytes (the chunk is ours, a fresh buffer per socket read).
      writeBody(this.#framing, chunk, { write: (data) => this.#pending!.push(data) > 0 });
      return;
    }
    this.#owner.corkUpstream(upstream.socket);
    writeBody(this.#framing, chunk, upstream.socket);
  }

  requestEnd(): void {
    this.#requestEnded = true;
    const upstream = this.upstream;
    if (upstream === null) {
      endBody(this.#framing, { write: (data) => this.#pending!.push(data) > 0 });
      return;
    }
    this.#owner.corkUpstream(upstream.socket);
    endBody(this.#framing, upstream.socket);
    upstream.requestSent();
  }

  /** The client socket, corked from the first write of a batch of response bytes to its end. */
  #client(): Duplex {
    const client = this.#owner.socket;
    if (!this.#clientCorked) {
      this.#clientCorked = true;
      client.cork();
    }
    return client;
  }

  uncork(): void {
    if (!this.#clientCorked) return;
    this.#clientCorked = false;
    const client = this.#owner.socket;
    client.uncork();
    const upstream = this.upstream;
    if (upstream !== null && client.writableNeedDrain && !this.#upstreamPaused) {
      // The client reads slower than the upstream answers: stop reading the upstream until it drains.
      this.#upstreamPaused = true;
      upstream.setReading(false);
      client.once('drain', () => {
        this.#upstreamPaused = false;
        upstream.setReading(true);
      });
    }
  }

  onResponseHead(head: MessageHead): void {
    if (this.#detached) return;
    const response = responseHead(head, {
      isHead: this.isHead,
      clientMinor: this.#clientMinor,
      closeAfter: this.closeAfter,
    });
    this.#responseFraming = response.framing;
    this.responseStarted = true;
    this.#client().write(response.text);
  }

  onResponseBody(chunk: Buffer): void {
    if (!this.#detached) writeBody(this.#responseFraming, chunk, this.#client());
  }

  onResponseEnd(): void {
    if (this.#detached) return;
    endBody(this.#responseFraming, this.#client());
    this.upstream = null;
    if (this.#responseFraming === 'until-close') {
      this.#owner.socket.end();
      this.#owner.close();
      return;
    }
    this.#owner.finished(this);
  }

  onUpstreamFailure(): void {
    this.upstream = null;
    if (this.#detached || this.#owner.isClosed) return;
    if (this.responseStarted) {
      this.#owner.socket.destroy();
      this.#owner.close();
      return;
    }
    this.#owner.close();
    writeAnswer(this.#owner.socket, {
      status: 502,
      headers: { [SIGIL_ERROR_HEADER]: 'upstream-failed', 'content-type': 'text/plain; charset=utf-8' },
      body: 'sigil proxy: bad gateway\n',
    });
  }

  abandon(): void {
    const upstream = this.upstream;
    this.upstream = null;
    upstream?.abort();
  }
}
