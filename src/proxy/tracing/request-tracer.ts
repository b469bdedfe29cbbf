// What the listeners call per request when tracing or the access log is on: `start*` continues or
// starts the request's trace (rewriting the propagation headers the next hop gets) and returns the
// record to end when the response is done, or null when there is nothing to record. Sampled
// requests get a span (span.ts) handed to a sink (span-batcher.ts); unsampled ones still carry a
// traceparent (flag 00) downstream so every hop agrees on the trace ID, and allocate no span.
// Listeners hold `RequestTracer | null`: with neither feature configured they skip all of this.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { Clock } from '../../spiffe/clock.js';
import { proxyErrorResponse } from '../errors.js';
import type { AccessLog } from './access-log.js';
import {
  extractTrace,
  formatB3Single,
  formatTraceparent,
  type IncomingTrace,
  type TraceHeaders,
} from './context.js';
import type { IdSource } from './ids.js';
import { collectFlat, collectObject, type Propagated, writeFlat, writeObject } from './propagation.js';
import type { ParentBasedSampler } from './sampler.js';
import { FinishedSpan, SPAN_KIND_CLIENT, SPAN_KIND_SERVER, type SpanOrigin } from './span.js';

export interface RequestTracer {
  /** An outbound HTTP/1.1 request from the app; `headers` (going upstream) may be rewritten. */
  startOutbound(
    listener: string,
    method: string,
    target: string,
    headers: string[],
    sourceId: string,
    service: string,
  ): TracedRequest | null;
  /** An inbound HTTP/1.1 request from a caller (null: plaintext); `headers` (going to the app) may be rewritten. */
  startInbound(
    listener: string,
    method: string,
    target: string,
    headers: string[],
    sourceId: string | null,
    destinationId: string,
  ): TracedRequest | null;
  /** An inbound HTTP/2 stream: read from `headers`, written to `forwarded`. */
  startStream(
    listener: string,
    headers: IncomingHttpHeaders,
    forwarded: OutgoingHttpHeaders,
    sourceId: string | null,
    destinationId: string,
  ): TracedRequest | null;
}

/** The parts of the outbound request context (resilience/exchange.ts) a span reports. */
export interface RequestOutcome {
  readonly route: string | null;
  readonly attempt: number;
  /** The endpoint that served the last try (outbound/endpoints.ts), read through ServedBy. */
  readonly lastEndpoint: unknown;
}

/** What a span reads of the endpoint that served an outbound request. */
interface ServedBy {
  readonly label: string;
  readonly config: { readonly serverIds: readonly string[] };
}

export interface TracedRequest {
  /**
   * Ends the request: `statusCode` as answered to the client (the proxy's own answer included),
   * `error` the upstream failure when there was no response (null otherwise), `outcome` the
   * outbound request context (null inbound).
   */
  end(statusCode: number, error: unknown, outcome: RequestOutcome | null): void;
}

/** Where finished spans go. */
export interface SpanSink {
  add(span: FinishedSpan): void;
}

export interface TracingParts {
  readonly sampler: ParentBasedSampler;
  readonly ids: IdSource;
  readonly origin: SpanOrigin;
  readonly sink: SpanSink;
  /** Emit the B3 single header, and/or the X-B3-* headers, besides traceparent. */
  readonly emitB3: boolean;
  readonly emitB3Multi: boolean;
}

export interface TracerOptions {
  /** Null: no spans and no header rewriting (the access log alone). */
  readonly tracing: TracingParts | null;
  readonly accessLog: AccessLog | null;
  /** Epoch time of span starts and log lines. */
  readonly clock: Clock;
  /** Elapsed time (ms) for durations; performance.now by default. */
  readonly monotonicMs?: () => number;
}

/** Paths are cut to this in spans and log lines: what a caller sends must not size our records. */
export const MAX_RECORDED_PATH_CHARS = 1024;

type Direction = 'outbound' | 'inbound';

export function createRequestTracer(options: TracerOptions): RequestTracer {
  return new Tracer(options);
}

class Tracer implements RequestTracer {
  private readonly tracing: TracingParts | null;
  private readonly accessLog: AccessLog | null;
  private readonly clock: Clock;
  private readonly monotonicMs: () => number;

  constructor(options: TracerOptions) {
    this.tracing = options.tracing;
    this.accessLog = options.accessLog;
    this.clock = options.clock;
    this.monotonicMs = options.monotonicMs ?? (() => performance.now());
  }

  startOutbound(
    listener: string,
    method: string,
    target: string,
    headers: string[],
    sourceId: string,
    service: string,
  ): TracedRequest | null {
    return this.startFlat('outbound', listener, method, target, headers, sourceId, service);
  }

  startInbound(
    listener: string,
    method: string,
    target: string,
    headers: string[],
    sourceId: string | null,
    destinationId: string,
  ): TracedRequest | null {
    return this.startFlat('inbound', listener, method, target, headers, sourceId, destinationId);
  }

  /** HTTP/1.1, either direction: the trace headers are read from and written into the flat list. */
  private startFlat(
    direction: Direction,
    listener: string,
    method: string,
    target: string,
    headers: string[],
    sourceId: string | null,
    destinationId: string,
  ): TracedRequest | null {
    const logged = this.accessLog?.isSampled() ?? false;
    if (this.tracing === null && !logged) return null;
    const propagated = this.decide(collectFlat(headers));
    if (propagated.out !== null) writeFlat(headers, propagated.out);
    return this.record(direction, listener, method, target, propagated, logged, sourceId, destinationId);
  }

  startStream(
    listener: string,
    headers: IncomingHttpHeaders,
    forwarded: OutgoingHttpHeaders,
    sourceId: string | null,
    destinationId: string,
  ): TracedRequest | null {
    const logged = this.accessLog?.isSampled() ?? false;
    if (this.tracing === null && !logged) return null;
    const propagated = this.decide(collectObject(headers));
    if (propagated.out !== null) writeObject(forwarded, propagated.out);
    const method = String(headers[':method'] ?? '');
    const target = String(headers[':path'] ?? '');
    return this.record('inbound', listener, method, target, propagated, logged, sourceId, destinationId);
  }

  /** Our span (when sampled) and the headers to send for it; `out` null when nothing changes. */
  private decide(found: TraceHeaders): Decision {
    const incoming = extractTrace(found);
    const tracing = this.tracing;
    if (tracing === null) {
      // The access log alone: report the caller's trace, change nothing.
      return { traceId: incoming?.traceId || null, spanId: '', incoming, sampled: false, out: null };
    }
    const traceId = incoming?.traceId || tracing.ids.traceId();
    const sampled = tracing.sampler.isSampled(traceId, incoming?.sampled ?? null);
    const emitsB3 = tracing.emitB3 || tracing.emitB3Multi;
    if (!sampled && incoming !== null && incoming.isW3c && !emitsB3) {
      // Unsampled and already W3C: the caller's traceparent goes on as it is, at no cost.
      return { traceId, spanId: '', incoming, sampled, out: null };
    }
    // Unsampled, no span of ours: the caller's span (if any) stays the parent downstream sees.
    const spanId = sampled ? tracing.ids.spanId() : incoming?.parentSpanId || tracing.ids.spanId();
    const b3 = tracing.emitB3 ? formatB3Single(traceId, spanId, sampled) : null;
    const out: Propagated = {
      traceparent: formatTraceparent(traceId, spanId, sampled),
      tracestate: incoming?.tracestate ?? null,
      b3,
      b3Multi: tracing.emitB3Multi ? b3MultiHeaders(traceId, spanId, sampled) : null,
    };
    return { traceId, spanId: sampled ? spanId : '', incoming, sampled, out };
  }

  private record(
    direction: Direction,
    listener: string,
    method: string,
    target: string,
    decision: Decision,
    logged: boolean,
    sourceId: string | null,
    destinationId: string,
  ): TracedRequest | null {
    if (!decision.sampled && !logged) return null;
    return new Traced(
      this,
      direction,
      listener,
      method,
      recordedPath(target),
      decision,
      logged,
      sourceId,
      destinationId,
      this.clock.nowMs(),
      this.monotonicMs(),
    );
  }

  /** Called by Traced.end. */
  finish(request: Traced, statusCode: number, error: unknown, outcome: RequestOutcome | null): void {
    const durationMs = this.monotonicMs() - request.startedMonotonicMs;
    const servedBy = outcome?.lastEndpoint as ServedBy | undefined;
    let destinationId = request.destinationId;
    if (request.direction === 'outbound' && servedBy !== undefined) {
      destinationId = servedBy.config.serverIds.join(',');
    }
    const errorName = error === null || error === undefined ? null : proxyErrorResponse(error).error;
    const tracing = this.tracing;
    const decision = request.decision;
    if (tracing !== null && decision.sampled) {
      const attributes: Record<string, string | number> = {
        'http.request.method': request.method,
        'url.path': request.path,
        'sigil.listener': request.listener,
        'sigil.destination_id': destinationId,
      };
      if (statusCode > 0) attributes['http.response.status_code'] = statusCode;
      if (request.sourceId !== null) attributes['sigil.source_id'] = request.sourceId;
      if (request.direction === 'outbound') {
        attributes['sigil.service'] = request.destinationId;
        if (servedBy !== undefined) addServerAddress(attributes, servedBy.label);
      }
      if (outcome !== null) {
        if (outcome.route !== null) attributes['sigil.route'] = outcome.route;
        attributes['sigil.attempts'] = outcome.attempt;
      }
      let errorMessage: string | null = null;
      if (errorName !== null) {
        attributes['error.type'] = errorName;
        errorMessage = errorName;
      } else if (statusCode >= 500) {
        // The HTTP conventions: a 4xx is the caller's error, not the server's; only 5xx marks the span.
        attributes['error.type'] = String(statusCode);
        errorMessage = `HTTP ${statusCode}`;
      }
      tracing.sink.add(
        new FinishedSpan(
          tracing.origin,
          request.method,
          request.direction === 'outbound' ? SPAN_KIND_CLIENT : SPAN_KIND_SERVER,
          decision.traceId!,
          decision.spanId,
          decision.incoming?.parentSpanId ?? '',
          decision.incoming?.tracestate ?? null,
          request.startedEpochMs,
          durationMs,
          attributes,
          errorMessage,
        ),
      );
    }
    if (request.logged) {
      this.accessLog!.write({
        time: new Date(request.startedEpochMs).toISOString(),
        listener: request.listener,
        direction: request.direction,
        method: request.method,
        path: request.path,
        status: statusCode,
        duration_ms: Math.round(durationMs * 1_000) / 1_000,
        source_id: request.sourceId,
        destination_id: destinationId,
        trace_id: decision.traceId,
        route: outcome?.route ?? null,
        attempts: outcome?.attempt ?? 1,
        error: errorName,
      });
    }
  }
}

interface Decision {
  /** The trace the request belongs to; null only when tracing is off and the caller sent none. */
  readonly traceId: string | null;
  /** Our span's ID, '' when not sampled. */
  readonly spanId: string;
  readonly incoming: IncomingTrace | null;
  readonly sampled: boolean;
  readonly out: Propagated | null;
}

class Traced implements TracedRequest {
  private isEnded = false;

  constructor(
    private readonly tracer: Tracer,
    readonly direction: Direction,
    readonly listener: string,
    readonly method: string,
    readonly path: string,
    readonly decision: Decision,
    readonly logged: boolean,
    readonly sourceId: string | null,
    /** Outbound: the service; inbound: our own ID. */
    readonly destinationId: string,
    readonly startedEpochMs: number,
    readonly startedMonotonicMs: number,
  ) {}

  end(statusCode: number, error: unknown, outcome: RequestOutcome | null): void {
    // A relay reports once, but a span must never be exported twice should that change.
    if (this.isEnded) return;
    this.isEnded = true;
    this.tracer.finish(this, statusCode, error, outcome);
  }
}

function b3MultiHeaders(traceId: string, spanId: string, sampled: boolean): string[] {
  return ['x-b3-traceid', traceId, 'x-b3-spanid', spanId, 'x-b3-sampled', sampled ? '1' : '0'];
}

/** The path without its query (which may carry secrets), bounded. */
function recordedPath(target: string): string {
  const query = target.indexOf('?');
  const path = query === -1 ? target : target.slice(0, query);
  return path.length > MAX_RECORDED_PATH_CHARS ? path.slice(0, MAX_RECORDED_PATH_CHARS) : path;
}

function addServerAddress(attributes: Record<string, string | number>, label: string): void {
  const colon = label.lastIndexOf(':');
  if (colon <= 0) return;
  attributes['server.address'] = label.slice(0, colon).replace(/^\[|\]$/g, '');
  attributes['server.port'] = Number(label.slice(colon + 1));
}
