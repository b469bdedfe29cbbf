// The only module that loads OpenTelemetry: its OTLP/HTTP protobuf exporter and the Resource the
// spans carry. index.ts imports it dynamically, and only when `tracing` is configured, so a sidecar
// without tracing never evaluates these packages (their memory counts against the sidecar's budget).
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { TracingConfig } from './config.js';
import type { FinishedSpan, SpanOrigin } from './span.js';
import type { BatchExporter } from './span-batcher.js';

/** The instrumentation scope of every span: the proxy itself. */
const SCOPE = Object.freeze({ name: 'sigil-proxy', version: '0.1.0' });

export function createOtlpExport(
  config: TracingConfig,
  spiffeId: string,
): { exporter: BatchExporter<FinishedSpan>; origin: SpanOrigin } {
  const exporter = new OTLPTraceExporter({
    url: config.collector,
    timeoutMillis: config.batch.exportTimeoutMs,
    // The batcher sends one batch at a time; 2, not 1, so that an export the batcher already gave
    // up on (its timer and the exporter's can fire in either order) cannot refuse the next one.
    concurrencyLimit: 2,
  });
  const resource = resourceFromAttributes({
    'service.name': config.serviceName,
    'sigil.spiffe_id': spiffeId,
  });
  return { exporter, origin: { resource, instrumentationScope: SCOPE } };
}
