// Timeouts as layers. `requestTimeoutLayer` bounds the whole exchange, every try and the waits
// between them, by the request's deadline (its own timeout capped by a propagated one, set by the
// listener in the context); `tryTimeoutLayer` bounds one try, and a try that runs out fails with a
// `timeout` the retry layer may repeat. When the time is up before the response head, the caller
// gets the proxy's own 504; after it, the response is cut off (the head has gone already).
import type { Clock } from '../../spiffe/clock.js';
import { ProxyError } from '../errors.js';
import { type ExchangeHandler, ForwardingHandler, type Layer, type Send } from './exchange.js';

/** The whole request, by `request.context.deadlineAtMs`; a deadline already past is refused before any try. */
export function requestTimeoutLayer(clock: Clock): Layer {
  return (next: Send): Send =>
    (request, handler) => {
      const deadline = request.context.deadlineAtMs;
      if (deadline === Number.POSITIVE_INFINITY) {
        next(request, handler);
        return;
      }
      const remaining = deadline - clock.nowMs();
      const reason = request.context.deadlineFromCaller ? 'deadline-exceeded' : 'timeout';
      if (remaining <= 0) {
        handler.onConnect(() => {});
        handler.onError(new ProxyError('deadline-exceeded', 'proxy: the request arrived after its deadline'));
        return;
      }
      next(request, new TimedExchange(handler, clock, remaining, reason));
    };
}

/** Each try, by `tryTimeoutMs` or the request's deadline, whichever comes first. */
export function tryTimeoutLayer(clock: Clock, tryTimeoutMs: number): Layer {
  return (next: Send): Send =>
    (request, handler) => {
      const remaining = Math.min(tryTimeoutMs, request.context.deadlineAtMs - clock.nowMs());
      next(request, new TimedExchange(handler, clock, Math.max(remaining, 0), 'timeout'));
    };
}

/** Forwards one exchange until its time is up, then aborts it and reports the timeout once. */
class TimedExchange extends ForwardingHandler {
  private abort: ((err?: Error) => void) | undefined;
  private isOver = false;
  private readonly cancelTimer: () => void;

  constructor(
    target: ExchangeHandler,
    clock: Clock,
    delayMs: number,
    private readonly reason: 'timeout' | 'deadline-exceeded',
  ) {
    super(target);
    this.cancelTimer = clock.setTimer(delayMs, this.expire);
  }

  private readonly expire = (): void => {
    if (this.isOver) return;
    this.isOver = true;
    const err = new ProxyError(
      this.reason,
      this.reason === 'timeout'
        ? 'proxy: the upstream did not answer in time'
        : 'proxy: the request deadline passed',
    );
    // Stop the upstream request whether or not undici has started it (a queued one aborts on connect).
    this.abort?.(err);
    this.target.onError(err);
  };

  override onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    if (this.isOver) abort();
    else this.target.onConnect(abort);
  }

  override onHeaders(
    statusCode: number,
    rawHeaders: Buffer[],
    resume: () => void,
    statusText: string,
  ): boolean {
    return !this.isOver && this.target.onHeaders(statusCode, rawHeaders, resume, statusText);
  }

  override onData(chunk: Buffer): boolean {
    return !this.isOver && this.target.onData(chunk);
  }

  override onComplete(trailers: string[] | null): void {
    if (this.isOver) return;
    this.isOver = true;
    this.cancelTimer();
    this.target.onComplete(trailers);
  }

  override onError(err: Error): void {
    if (this.isOver) return;
    this.isOver = true;
    this.cancelTimer();
    this.target.onError(err);
  }
}
