// A finished span in the shape OpenTelemetry's exporters read (sdk-trace's ReadableSpan), built
// directly rather than through the SDK's Tracer: the proxy already knows every ID, time and
// attribute when a request ends, and the SDK's context manager, span processors and per-span
// setters would cost more than the span itself. Types only are imported: nothing of OTel loads here.
import type { Attributes, HrTime, SpanContext, SpanStatus } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';

/** OpenTelemetry's SpanKind values (api's enum, without loading the api). */
export const SPAN_KIND_SERVER = 1;
export const SPAN_KIND_CLIENT = 2;
/** OpenTelemetry's SpanStatusCode values. */
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;
const TRACE_FLAG_SAMPLED = 1;

const NO_LINKS: ReadableSpan['links'] = Object.freeze([]) as unknown as ReadableSpan['links'];
const NO_EVENTS: ReadableSpan['events'] = Object.freeze([]) as unknown as ReadableSpan['events'];
const UNSET: SpanStatus = Object.freeze({ code: STATUS_UNSET });

/** What every span of one proxy shares. */
export interface SpanOrigin {
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
}

export class FinishedSpan implements ReadableSpan {
  readonly links = NO_LINKS;
  readonly events = NO_EVENTS;
  readonly ended = true;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  readonly parentSpanContext: SpanContext | undefined;
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  readonly status: SpanStatus;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly duration: HrTime;

  constructor(
    origin: SpanOrigin,
    readonly name: string,
    readonly kind: typeof SPAN_KIND_SERVER | typeof SPAN_KIND_CLIENT,
    readonly traceId: string,
    readonly spanId: string,
    parentSpanId: string,
    private readonly tracestate: string | null,
    startEpochMs: number,
    durationMs: number,
    readonly attributes: Attributes,
    /** Null: no error (status left unset, as the HTTP conventions ask for success). */
    errorMessage: string | null,
  ) {
    this.resource = origin.resource;
    this.instrumentationScope = origin.instrumentationScope;
    this.parentSpanContext =
      parentSpanId === ''
        ? undefined
        : { traceId, spanId: parentSpanId, traceFlags: TRACE_FLAG_SAMPLED, isRemote: true };
    this.status = errorMessage === null ? UNSET : { code: STATUS_ERROR, message: errorMessage };
    this.startTime = hrTime(startEpochMs);
    this.endTime = hrTime(startEpochMs + durationMs);
    this.duration = hrTime(durationMs);
  }

  spanContext(): SpanContext {
    const tracestate = this.tracestate;
    return {
      traceId: this.traceId,
      spanId: this.spanId,
      traceFlags: TRACE_FLAG_SAMPLED,
      // The exporter only serializes it; the api's TraceState class is not needed for that.
      traceState:
        tracestate === null ? undefined : ({ serialize: () => tracestate } as SpanContext['traceState']),
    };
  }
}

/** Milliseconds (fractional) as OpenTelemetry's [seconds, nanoseconds]. */
export function hrTime(ms: number): HrTime {
  const seconds = Math.floor(ms / 1_000);
  return [seconds, Math.min(999_999_999, Math.round((ms - seconds * 1_000) * 1_000_000))];
}
