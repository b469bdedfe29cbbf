// The retry layer: sends a request again, after a backoff with full jitter, when a try fails in a
// way worth repeating (retry-policy.ts), while the request is repeatable, tries remain, the deadline
// allows the wait and the service's retry budget has room. A retry goes to another endpoint when
// there is one (the balancer avoids the previous try's). Every try carries `x-sigil-attempt`, so a
// sidecar further down the call chain knows an outer one already retries it and does not multiply
// the load (only failures that never reached an app are retried there). The decision is made when
// a try's response head or error arrives; a response not retried goes to the caller unaltered.
import type { Clock } from '../../spiffe/clock.js';
import { ProxyError } from '../errors.js';
import { backoffDelayMs, retryAfterMs } from './backoff.js';
import { bufferBody, contentLength } from './body-buffer.js';
import { ATTEMPT_HEADER, setHeader } from './deadline.js';
import type { ExchangeHandler, Layer, ProxyRequest, Send } from './exchange.js';
import type { RetryBudget } from './retry-budget.js';
import {
  isRepeatable,
  MAX_RETRY_BODY_BYTES,
  type RetryPolicy,
  type RetryReason,
  retryReasonOf,
} from './retry-policy.js';

export interface RetryEvents {
  /** A retry is about to wait `delayMs` and go. */
  onRetry(reason: RetryReason): void;
  /** A retry was wanted but the budget was empty: the failure went to the caller at once. */
  onBudgetExhausted(): void;
}

export interface RetryLayerOptions {
  readonly policy: RetryPolicy;
  readonly budget: RetryBudget;
  readonly clock: Clock;
  readonly random: () => number;
  readonly events: RetryEvents;
}

export function retryLayer(options: RetryLayerOptions): Layer {
  return (next: Send): Send =>
    (request, handler) => {
      options.budget.deposit();
      if (options.policy.maxAttempts <= 1 || !isRepeatable(request, options.policy)) {
        next(request, handler);
        return;
      }
      const body = request.body;
      if (body === null || Buffer.isBuffer(body)) {
        new RetryingExchange(next, request, handler, options).start();
        return;
      }
      const length = contentLength(request.headers);
      if (length === null || length > MAX_RETRY_BODY_BYTES) {
        // Too large (or of unknown length) to keep: it streams, and this request is not retried.
        next(request, handler);
        return;
      }
      bufferBody(body, length, (buffered) => {
        if (buffered === null) {
          handler.onError(new Error('the client closed the request body before it was complete'));
          return;
        }
        new RetryingExchange(next, { ...request, body: buffered }, handler, options).start();
      });
    };
}

/** One request across its tries: the handler each try reports to, forwarding only the try that stands. */
class RetryingExchange implements ExchangeHandler {
  private tryAbort: ((err?: Error) => void) | undefined;
  private cancelWait: (() => void) | undefined;
  /** The current try's response head went to the caller: everything after it is forwarded as is. */
  private isCommitted = false;
  /** The current try's response is being read and dropped, to retry once it is over. */
  private isDiscarding = false;
  private isAborted = false;
  private retryDelayMs = 0;
  /** The last retry wanted was refused by the budget (the caller is told so when there is no response). */
  private budgetRefused = false;
  private readonly attemptIndex: number;

  constructor(
    private readonly next: Send,
    private readonly request: ProxyRequest,
    private readonly handler: ExchangeHandler,
    private readonly options: RetryLayerOptions,
  ) {
    // The listener's header list is this request's own; the attempt field is set in place per try.
    // In a retry scope the request arrived with the field (possibly cased otherwise): replace it.
    this.attemptIndex = setHeader(request.headers, ATTEMPT_HEADER, '1', request.context.inRetryScope);
  }

  start(): void {
    this.handler.onConnect(this.abortAll);
    this.sendTry();
  }

  private readonly abortAll = (err?: Error): void => {
    if (this.isAborted) return;
    this.isAborted = true;
    if (this.cancelWait !== undefined) {
      // Between tries no try will report the end: end the exchange here, so the layers above
      // (limits, timeouts) let go of it.
      this.cancelWait();
      this.cancelWait = undefined;
      this.handler.onError(err ?? new Error('request aborted'));
      return;
    }
    this.tryAbort?.(err);
  };

  private sendTry(): void {
    this.tryAbort = undefined;
    this.isDiscarding = false;
    this.request.headers[this.attemptIndex] = String(this.request.context.attempt);
    this.next(this.request, this);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.tryAbort = abort;
    if (this.isAborted) abort();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.isAborted) return false;
    if (statusCode >= 200 && this.options.policy.onStatuses.has(statusCode)) {
      const delay = this.retryDelay(
        `status-${statusCode}`,
        true,
        retryAfterOf(statusCode, rawHeaders, this.options.clock),
      );
      if (delay !== null) {
        this.retryDelayMs = delay;
        this.isDiscarding = true;
        return true;
      }
    }
    this.isCommitted = true;
    return this.handler.onHeaders(statusCode, rawHeaders, resume, statusText);
  }

  onData(chunk: Buffer): boolean {
    return this.isDiscarding || this.handler.onData(chunk);
  }

  onComplete(trailers: string[] | null): void {
    if (this.isDiscarding) this.waitAndRetry();
    else this.handler.onComplete(trailers);
  }

  onError(err: Error): void {
    if (this.isDiscarding) {
      // The dropped response broke off: the retry was decided already.
      this.waitAndRetry();
      return;
    }
    if (this.isCommitted || this.isAborted) {
      this.handler.onError(err);
      return;
    }
    const failure = retryReasonOf(err);
    if (failure !== null) {
      const delay = this.retryDelay(failure.reason, failure.wasSent, null);
      if (delay !== null) {
        this.retryDelayMs = delay;
        this.waitAndRetry();
        return;
      }
      if (this.budgetRefused) {
        this.handler.onError(
          new ProxyError('retry-budget-exhausted', `proxy: ${err.message}; no retry budget left`, {
            cause: err,
          }),
        );
        return;
      }
    }
    this.handler.onError(err);
  }

  /** The wait before retrying this failure, or null when it goes to the caller. */
  private retryDelay(reason: RetryReason, wasSent: boolean, retryAfter: number | null): number | null {
    const { policy, clock, random, budget, events } = this.options;
    const context = this.request.context;
    if (context.attempt >= policy.maxAttempts) return null;
    if (wasSent && context.inRetryScope) return null;
    const delay = Math.max(
      backoffDelayMs(context.attempt, policy.backoff.baseMs, policy.backoff.maxMs, random),
      retryAfter ?? 0,
    );
    if (clock.nowMs() + delay >= context.deadlineAtMs) return null;
    if (!budget.tryWithdraw()) {
      this.budgetRefused = true;
      events.onBudgetExhausted();
      return null;
    }
    events.onRetry(reason);
    return delay;
  }

  private waitAndRetry(): void {
    if (this.isAborted) return;
    const context = this.request.context;
    context.attempt++;
    this.cancelWait = this.options.clock.setTimer(this.retryDelayMs, () => {
      this.cancelWait = undefined;
      if (this.isAborted) return;
      // A retry never starts once the deadline has passed.
      if (this.options.clock.nowMs() >= context.deadlineAtMs) {
        this.handler.onError(
          new ProxyError('deadline-exceeded', 'proxy: the deadline passed before the retry'),
        );
        return;
      }
      this.sendTry();
    });
  }
}

/** `Retry-After` of a 503 or 429, in ms; null for other statuses or without a valid field. */
function retryAfterOf(statusCode: number, rawHeaders: Buffer[], clock: Clock): number | null {
  if (statusCode !== 503 && statusCode !== 429) return null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 11 && name.toString('latin1').toLowerCase() === 'retry-after') {
      return retryAfterMs(rawHeaders[i + 1]!.toString('latin1'), clock.nowMs());
    }
  }
  return null;
}
