// RequestMirror: copies of a share of a rule's requests go to shadow services, whose answers are
// read and dropped. The caller never waits for a copy nor sees how it fared: copies leave after the
// request itself, through the shadow's own stack, sent once (Istio mirrors without retries, and a
// copy must not spend the shadow's retry budget, let alone the caller's). Copies say what they are:
// `x-sigil-mirror: 1`, and the Host with `-shadow` appended to its name (as Envoy and Istio do).
// A body is kept only up to MAX_RETRY_BODY_BYTES (the same buffering the retry layer does, which
// then finds it kept and does not read it again); a larger one, or one of unknown length, goes to
// the upstream alone. Copies in flight are bounded per shadow; beyond the bound they are dropped.
import type { Clock } from '../../spiffe/clock.js';
import { bufferBody, contentLength } from '../resilience/body-buffer.js';
import { DEADLINE_HEADER, setHeader } from '../resilience/deadline.js';
import {
  type ExchangeHandler,
  newRequestContext,
  type ProxyRequest,
  type Send,
} from '../resilience/exchange.js';
import { MAX_RETRY_BODY_BYTES } from '../resilience/retry-policy.js';
import { MIRROR_HEADER, type RequestMirror, type RouteOverrides } from '../routes/index.js';
import type { MirrorOutcome, RouteMetrics } from './route-metrics.js';
import type { RoutedService } from './routed-service.js';

/** Copies in flight to one shadow at most; beyond this they are dropped (and counted). */
export const MAX_MIRRORS_IN_FLIGHT = 256;
/** A copy's time when neither the request nor the shadow bounds it. */
export const MIRROR_TIMEOUT_CAP_MS = 15_000;

/** Copies go once: the shadow's stack without its retries, its timeouts as configured. */
const SEND_ONCE: RouteOverrides = Object.freeze({
  timeouts: Object.freeze({ requestMs: null, backendRequestMs: null }),
  retry: Object.freeze({ maxAttempts: 1, onStatuses: null, backoffMs: null }),
});

export interface MirrorDeps {
  /** The live service of a name (shadows are configured services). */
  readonly services: { get(name: string): RoutedService | undefined };
  readonly random: () => number;
  readonly clock: Clock;
  readonly metrics: RouteMetrics;
}

/** One shadow's counters: copies in flight, and the outcome cells. */
class Shadow {
  inFlight = 0;
  constructor(readonly cells: Readonly<Record<MirrorOutcome, { value: number }>>) {}
}

export class Mirroring {
  private readonly shadows = new Map<string, Shadow>();

  constructor(private readonly deps: MirrorDeps) {}

  /**
   * Hands `request` to `forward` (with the body kept when a copy needs it) and then sends copies to
   * the shadows of `mirrors` the dice pick. `handler` is the request's: told if the body breaks off
   * while it is being kept.
   */
  send(
    mirrors: readonly RequestMirror[],
    request: ProxyRequest,
    handler: ExchangeHandler,
    forward: Send,
  ): void {
    let due: RequestMirror[] | null = null;
    for (const mirror of mirrors) {
      if (mirror.share < 1 && this.deps.random() >= mirror.share) continue;
      due ??= [];
      due.push(mirror);
    }
    if (due === null) {
      forward(request, handler);
      return;
    }
    const body = request.body;
    if (body === null || Buffer.isBuffer(body)) {
      this.forwardAndCopy(due, request, handler, forward);
      return;
    }
    const length = contentLength(request.headers);
    if (length === null || length > MAX_RETRY_BODY_BYTES) {
      for (const mirror of due) this.shadow(mirror.service).cells['too-large'].value++;
      forward(request, handler);
      return;
    }
    const copies = due;
    bufferBody(body, length, (buffered) => {
      if (buffered === null) {
        handler.onError(new Error('the client closed the request body before it was complete'));
        return;
      }
      this.forwardAndCopy(copies, { ...request, body: buffered }, handler, forward);
    });
  }

  private forwardAndCopy(
    due: readonly RequestMirror[],
    request: ProxyRequest,
    handler: ExchangeHandler,
    forward: Send,
  ): void {
    // The copies are made before the request goes: the layers below may change its header list.
    const copies = due.map((mirror) => this.copy(mirror, request));
    forward(request, handler);
    for (const copy of copies) copy?.();
  }

  /** A function that sends one copy, or null when it is dropped. */
  private copy(mirror: RequestMirror, request: ProxyRequest): (() => void) | null {
    const shadow = this.shadow(mirror.service);
    const service = this.deps.services.get(mirror.service);
    if (service === undefined || shadow.inFlight >= MAX_MIRRORS_IN_FLIGHT) {
      shadow.cells.dropped.value++;
      return null;
    }
    const headers = request.headers.slice();
    setHeader(headers, MIRROR_HEADER, '1');
    shadowHost(headers);
    const context = newRequestContext({
      inRetryScope: request.context.inRetryScope,
      hasIdempotencyKey: request.context.hasIdempotencyKey,
    });
    const ownMs = service.requestTimeoutMs > 0 ? service.requestTimeoutMs : MIRROR_TIMEOUT_CAP_MS;
    const ownDeadline = this.deps.clock.nowMs() + ownMs;
    context.deadlineFromCaller = request.context.deadlineAtMs < ownDeadline;
    context.deadlineAtMs = Math.min(request.context.deadlineAtMs, ownDeadline);
    context.route = request.context.route;
    setHeader(headers, DEADLINE_HEADER, String(Math.floor(context.deadlineAtMs)));
    const copy: ProxyRequest = {
      method: request.method,
      path: request.path,
      headers,
      body: request.body,
      context,
    };
    return () => {
      shadow.inFlight++;
      shadow.cells.sent.value++;
      service.stackFor(SEND_ONCE)(copy, new DiscardedExchange(shadow));
    };
  }

  private shadow(name: string): Shadow {
    let shadow = this.shadows.get(name);
    if (shadow === undefined) {
      const { metrics } = this.deps;
      shadow = new Shadow({
        sent: metrics.mirror(name, 'sent'),
        dropped: metrics.mirror(name, 'dropped'),
        'too-large': metrics.mirror(name, 'too-large'),
      });
      this.shadows.set(name, shadow);
    }
    return shadow;
  }
}

/** `name-shadow[:port]` for the Host field, in place (Envoy's shadow host, before any port). */
export function shadowHost(headers: string[]): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length !== 4 || headers[i]!.toLowerCase() !== 'host') continue;
    headers[i + 1] = shadowHostValue(headers[i + 1]!);
  }
}

export function shadowHostValue(host: string): string {
  const colon = host.lastIndexOf(':');
  // A port follows the last colon, unless that colon is inside an IPv6 literal's brackets.
  if (colon === -1 || host.lastIndexOf(']') > colon) return `${host}-shadow`;
  return `${host.slice(0, colon)}-shadow${host.slice(colon)}`;
}

/** Reads a copy's answer and drops it; gives the shadow's slot back however the copy ends. */
class DiscardedExchange implements ExchangeHandler {
  private isOver = false;

  constructor(private readonly shadow: Shadow) {}

  onConnect(): void {}
  onHeaders(): boolean {
    return true;
  }
  onData(): boolean {
    return true;
  }
  onComplete(): void {
    this.end();
  }
  onError(): void {
    this.end();
  }
  private end(): void {
    if (this.isOver) return;
    this.isOver = true;
    this.shadow.inFlight--;
  }
}
