// Tracing and the access log for one sidecar: builds the RequestTracer the listeners call, the
// span batcher and exporter behind it, and the access log writer. main.ts imports this module only
// when `tracing` or `access_log` is configured, and this module loads OpenTelemetry (otlp.ts) only
// for `tracing`: a sidecar with neither loads none of it.
import pino from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Clock } from '../../spiffe/clock.js';
import type { ProxyLogger } from '../logger.js';
import { AccessLog } from './access-log.js';
import type { AccessLogConfig, TracingConfig } from './config.js';
import { IdSource, type RandomFill } from './ids.js';
import { createRequestTracer, type RequestTracer, type TracingParts } from './request-tracer.js';
import { ParentBasedSampler } from './sampler.js';
import type { FinishedSpan } from './span.js';
import { SpanBatcher } from './span-batcher.js';

export type { AccessLogConfig, TracingConfig } from './config.js';
export { checkAccessLog, checkTracing } from './config.js';
export type { RequestOutcome, RequestTracer, TracedRequest } from './request-tracer.js';

/** Bytes of access log lines buffered at most; past this, lines are dropped and counted. */
const MAX_ACCESS_LOG_BUFFER_BYTES = 4 * 1024 * 1024;

export interface ObservabilityDeps {
  readonly registry: Registry;
  readonly logger: ProxyLogger;
  readonly clock: Clock;
  /** Access log sampling. */
  readonly random: () => number;
  /** Trace and span ID bytes; crypto.randomFillSync by default. */
  readonly randomFill?: RandomFill;
  /** The proxy's SPIFFE ID, a resource attribute of its spans. */
  readonly spiffeId: string;
}

export interface RunningObservability {
  readonly tracer: RequestTracer;
  /** Exports the spans still queued (within the export timeout) and closes the access log. */
  close(): Promise<void>;
}

export async function startObservability(
  tracing: TracingConfig | null,
  accessLogConfig: AccessLogConfig | null,
  deps: ObservabilityDeps,
): Promise<RunningObservability> {
  const closers: Array<() => Promise<void>> = [];
  let parts: TracingParts | null = null;
  if (tracing !== null) {
    const { createOtlpExport } = await import('./otlp.js');
    const { exporter, origin } = createOtlpExport(tracing, deps.spiffeId);
    const spans = new Counter({
      name: 'sigil_proxy_trace_spans_total',
      help: 'Spans by outcome: exported to the collector, or dropped (queue full, export failed or timed out)',
      labelNames: ['outcome'],
      registers: [deps.registry],
    });
    const exported = spans.labels('exported');
    const dropped = spans.labels('dropped');
    let isFailing = false;
    const batcher = new SpanBatcher<FinishedSpan>(exporter, tracing.batch, deps.clock, {
      exported: (count) => {
        exported.inc(count);
        if (isFailing) {
          isFailing = false;
          deps.logger.info({ collector: tracing.collector }, 'Trace export recovered');
        }
      },
      dropped: (count) => dropped.inc(count),
      // Logged once per failing streak: a collector that is down would otherwise log every batch.
      exportFailed: (err) => {
        if (isFailing) return;
        isFailing = true;
        deps.logger.warn(
          { collector: tracing.collector, err: err.message },
          'Trace export failed; spans are dropped until the collector answers',
        );
      },
    });
    closers.push(() => batcher.close());
    parts = {
      sampler: new ParentBasedSampler(tracing.sampleRatio),
      ids: new IdSource(deps.randomFill),
      origin,
      sink: batcher,
      emitB3: tracing.propagation.includes('b3'),
      emitB3Multi: tracing.propagation.includes('b3multi'),
    };
  }
  let accessLog: AccessLog | null = null;
  if (accessLogConfig !== null) {
    const destination = pino.destination({
      dest: accessLogConfig.path === 'stdout' ? 1 : accessLogConfig.path,
      sync: false,
      append: true,
      maxLength: MAX_ACCESS_LOG_BUFFER_BYTES,
    });
    const dropped = new Counter({
      name: 'sigil_proxy_access_log_dropped_total',
      help: 'Access log lines dropped because the destination did not keep up',
      registers: [deps.registry],
    });
    destination.on('drop', () => dropped.inc());
    // A failing destination (disk full, file removed) must not take the proxy down.
    destination.on('error', (err: Error) =>
      deps.logger.error({ path: accessLogConfig.path, err: err.message }, 'Access log write failed'),
    );
    accessLog = new AccessLog(destination, accessLogConfig.sampleRatio, deps.random);
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          destination.once('close', () => resolve());
          destination.once('error', () => resolve());
          destination.end();
        }),
    );
  }
  const tracer = createRequestTracer({ tracing: parts, accessLog, clock: deps.clock });
  return {
    tracer,
    async close() {
      for (const close of closers) await close();
    },
  };
}
