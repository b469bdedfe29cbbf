// The request pipeline's one shape: a Handler takes a request and a cancellation signal and settles
// with the upstream's response or a typed error; a Layer wraps a Handler in another
// (`(next) => handler`, like undici's interceptors and cockatiel's `wrap()`). Timeouts, retries,
// budgets, breakers and balancing are layers; the relay to the upstream is the terminal Handler.
// The order of layers is not decided here but once per direction, in outbound/router.ts.
import type { Duplex, Readable } from 'node:stream';
import type { RequestSignal } from './request-signal.js';

export interface ProxyRequest {
  readonly method: string;
  /** The request target as it goes upstream. */
  readonly path: string;
  /**
   * Flat name/value list as received, hop-by-hop fields already removed. Never mutated: a layer
   * that adds a field passes on a new request.
   */
  readonly headers: readonly string[];
  /** Null when the request has none: a body-less request must not become a chunked one. */
  readonly body: Readable | null;
}

/** The head of an upstream response, settled once its status line and headers arrived. */
export interface ProxyResponse {
  readonly statusCode: number;
  readonly statusText: string;
  /** Name/value buffers as received, hop-by-hop fields included: the listener filters them when it writes. */
  readonly rawHeaders: readonly Buffer[];
  readonly body: ResponseBody;
}

/**
 * A response body that waits, holding its upstream connection (and at most a bounded part of the
 * body already read), until a consumer either pipes it or discards it; exactly one must happen.
 */
export interface ResponseBody {
  /**
   * Writes the body into `sink` with backpressure and ends it, then calls `done` once; with the
   * error instead if the body broke off (`sink` is then left to the caller).
   */
  pipeTo(sink: BodySink, done: (error: Error | null) => void): void;
  /** Drops the body unread and frees the upstream request (a layer that answers another way). */
  discard(): void;
}

/** What a body needs from where it goes (a node:http ServerResponse is one). */
export interface BodySink {
  write(chunk: Buffer): boolean;
  end(): void;
  once(event: 'drain', listener: () => void): unknown;
}

/**
 * Settles with the upstream's response, whatever its status (the app's answers are never altered),
 * or rejects: with a ProxyError (errors.ts) for what the proxy answers itself, or with the upstream
 * failure, which errors.ts maps too. Must not throw synchronously.
 */
export type Handler = (request: ProxyRequest, signal: RequestSignal) => Promise<ProxyResponse>;
export type Layer = (next: Handler) => Handler;

/** A verified connection to an upstream, for opaque (`tcp`, `http2`) listeners and HTTP upgrades. */
export interface UpstreamSocket {
  readonly socket: Duplex;
  /** The upstream's verified SPIFFE ID. */
  readonly serverId: string;
}

/** The connection-level pipeline: opens one verified upstream connection, or rejects with why not. */
export type Connector = () => Promise<UpstreamSocket>;
export type ConnectLayer = (next: Connector) => Connector;

/**
 * Wraps `terminal` in `layers`, the first outermost: it sees a request first and its response last.
 * No layers gives back `terminal` itself, so an empty stack adds no call, closure or allocation per
 * request.
 */
export function compose<H>(layers: readonly ((next: H) => H)[], terminal: H): H {
  let handler = terminal;
  for (let i = layers.length - 1; i >= 0; i--) handler = layers[i]!(handler);
  return handler;
}
