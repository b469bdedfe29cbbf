// The outbound request pipeline's one shape. A Send hands a request to the next stage with the
// handler that receives its response; a Layer wraps a Send in another (`(next) => send`, as undici's
// interceptors do). The handler is undici's own dispatch-handler shape, so the terminal Send is
// `pool.dispatch` and an empty stack passes the relay's handler straight to undici: no promise, no
// wrapper, no allocation per request. A layer that must see the response (retry, timeout, balancer)
// wraps the handler it is given for that one request, and only that layer pays for it.
//
// The order of the layers is written once, in outbound/stack.ts.
import type { Readable } from 'node:stream';

/** Per-request state shared by the layers across the tries of one request. */
export interface RequestContext {
  /** Absolute deadline on the injected clock (ms), or Infinity: set from the request timeout and any propagated deadline. */
  deadlineAtMs: number;
  /** The deadline came from the caller (`x-sigil-deadline`, `grpc-timeout`), not from this service's own request timeout. */
  deadlineFromCaller: boolean;
  /** 1 for the first try; the retry layer increments it. */
  attempt: number;
  /** The endpoint that served the previous try (written by the balancer, which avoids it on a retry). */
  lastEndpoint: unknown;
  /** True when an outer sidecar already retries this call chain (the request carried `x-sigil-attempt`). */
  inRetryScope: boolean;
  /** The request carried an `Idempotency-Key`: safe to repeat whatever its method. */
  readonly hasIdempotencyKey: boolean;
  /** The route rule that took the request (`namespace/name` and rule), null when no route applies; for logs, metrics and spans. */
  route: string | null;
}

/** A fresh context for one request: no deadline yet (applyDeadline sets it), first try. */
export function newRequestContext(signals: {
  inRetryScope: boolean;
  hasIdempotencyKey: boolean;
}): RequestContext {
  return {
    deadlineAtMs: Number.POSITIVE_INFINITY,
    deadlineFromCaller: false,
    attempt: 1,
    lastEndpoint: undefined,
    inRetryScope: signals.inRetryScope,
    hasIdempotencyKey: signals.hasIdempotencyKey,
    route: null,
  };
}

export interface ProxyRequest {
  readonly method: string;
  /** The request target as it goes upstream. */
  readonly path: string;
  /** Flat name/value list, hop-by-hop fields already removed. A layer that changes it passes a new request. */
  readonly headers: string[];
  /** Null when the request has none (a body-less request must not become a chunked one); a Buffer once buffered for retry. */
  readonly body: Readable | Buffer | null;
  readonly context: RequestContext;
}

/**
 * Receives one try's response: undici's legacy DispatchHandler, whose raw header buffers the relay
 * writes through unparsed. Exactly one of onComplete and onError ends it. `abort` (from onConnect)
 * stops the try.
 */
export interface ExchangeHandler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: string[] | null): void;
  onError(err: Error): void;
}

export type Send = (request: ProxyRequest, handler: ExchangeHandler) => void;
export type Layer = (next: Send) => Send;

/**
 * Wraps `terminal` in `layers`, the first outermost: it sees a request first and its response last.
 * No layers gives back `terminal` itself.
 */
export function compose(layers: readonly Layer[], terminal: Send): Send {
  let send = terminal;
  for (let i = layers.length - 1; i >= 0; i--) send = layers[i]!(send);
  return send;
}

/**
 * A handler that forwards everything to `target`: the base of a layer's per-request handler, which
 * overrides what it watches.
 */
export class ForwardingHandler implements ExchangeHandler {
  constructor(protected readonly target: ExchangeHandler) {}
  onConnect(abort: (err?: Error) => void): void {
    this.target.onConnect(abort);
  }
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    return this.target.onHeaders(statusCode, rawHeaders, resume, statusText);
  }
  onData(chunk: Buffer): boolean {
    return this.target.onData(chunk);
  }
  onComplete(trailers: string[] | null): void {
    this.target.onComplete(trailers);
  }
  onError(err: Error): void {
    this.target.onError(err);
  }
}
