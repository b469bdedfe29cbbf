// A fake `next` and a recording handler for layer unit tests: tries are answered by hand.
import {
  type ExchangeHandler,
  newRequestContext,
  type ProxyRequest,
  type RequestContext,
  type Send,
} from './exchange.js';

export interface FakeTry {
  readonly request: ProxyRequest;
  readonly handler: ExchangeHandler;
  /** The error the layer aborted this try with, once it did. */
  aborted: Error | undefined | null;
  respond(status: number, headers?: Record<string, string>, body?: string): void;
  fail(err: Error): void;
}

/** A `next` that records each try and lets the test answer it. */
export function fakeNext(): { send: Send; tries: FakeTry[] } {
  const tries: FakeTry[] = [];
  const send: Send = (request, handler) => {
    const attempt: FakeTry = {
      request,
      handler,
      aborted: null,
      respond(status, headers = {}, body = '') {
        const raw = Object.entries(headers).flatMap(([k, v]) => [Buffer.from(k), Buffer.from(v)]);
        handler.onHeaders(status, raw, () => {}, 'status');
        if (body !== '') handler.onData(Buffer.from(body));
        handler.onComplete(null);
      },
      fail(err) {
        handler.onError(err);
      },
    };
    tries.push(attempt);
    handler.onConnect((err) => {
      attempt.aborted = err;
    });
  };
  return { send, tries };
}

/** A handler that records what reaches the caller. */
export function recordingHandler(): ExchangeHandler & {
  status: number | null;
  body: string;
  error: Error | null;
  completed: boolean;
  abort: ((err?: Error) => void) | undefined;
} {
  return {
    status: null,
    body: '',
    error: null,
    completed: false,
    abort: undefined,
    onConnect(abort) {
      this.abort = abort;
    },
    onHeaders(status) {
      this.status = status;
      return true;
    },
    onData(chunk) {
      this.body += chunk.toString();
      return true;
    },
    onComplete() {
      this.completed = true;
    },
    onError(err) {
      this.error = err;
    },
  };
}

export function testRequest(
  overrides: Partial<ProxyRequest> = {},
  context: Partial<RequestContext> = {},
): ProxyRequest {
  return {
    method: 'GET',
    path: '/',
    headers: ['host', 'svc'],
    body: null,
    context: { ...newRequestContext({ inRetryScope: false, hasIdempotencyKey: false }), ...context },
    ...overrides,
  };
}
