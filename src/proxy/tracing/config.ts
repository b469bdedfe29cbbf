// The `tracing` and `access_log` config sections. Both are off when absent. Checked with the
// shared ConfigReader, every key bounded; parsed values camelCase with units.
import path from 'node:path';
import { quote } from '../../spiffe/errors.js';
import type { ConfigReader } from '../config-reader.js';
import { type BatchOptions, DEFAULT_BATCH } from './span-batcher.js';

/** Header formats: W3C is always read and written; B3 is always read, and written when listed. */
const PROPAGATIONS = ['w3c', 'b3', 'b3multi'] as const;
export type Propagation = (typeof PROPAGATIONS)[number];

export const DEFAULT_SERVICE_NAME = 'sigil-proxy';
/** New traces sampled when sample_ratio is not set: 1%, as Istio's default, since a span per request costs CPU. */
export const DEFAULT_SAMPLE_RATIO = 0.01;
/** Collector URLs longer than this are refused: the exporter keeps it, and it is logged. */
const MAX_URL_CHARS = 2048;
const MAX_SERVICE_NAME_CHARS = 255;
/** Spans held for export at most: about 1 KB each, so 64 MB at the very worst. */
const MAX_QUEUE = 65_536;

export interface TracingConfig {
  /** The OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces. */
  readonly collector: string;
  /** Share of new traces sampled (a caller's decision is always followed), 0 to 1. */
  readonly sampleRatio: number;
  /** The spans' `service.name`. */
  readonly serviceName: string;
  readonly propagation: readonly Propagation[];
  readonly batch: BatchOptions;
}

export interface AccessLogConfig {
  /** Share of requests logged, 0 to 1. */
  readonly sampleRatio: number;
  /** 'stdout', or an absolute file path (appended to). */
  readonly path: string;
}

export function checkTracing(raw: unknown, r: ConfigReader): TracingConfig | null {
  if (raw === undefined) return null;
  const o = r.mapping(raw, 'tracing', ['collector', 'sample_ratio', 'service_name', 'propagation', 'batch']);
  const collector = checkCollector(o.collector, r);
  const serviceName = o.service_name ?? DEFAULT_SERVICE_NAME;
  if (
    typeof serviceName !== 'string' ||
    serviceName.trim() === '' ||
    serviceName.length > MAX_SERVICE_NAME_CHARS ||
    !/^\P{Cc}+$/u.test(serviceName)
  ) {
    r.report(
      'tracing.service_name',
      `must be a name of 1 to ${MAX_SERVICE_NAME_CHARS} printable characters (got ${quote(serviceName)})`,
    );
  }
  const propagation = r
    .list(o.propagation ?? ['w3c'], 'tracing.propagation', PROPAGATIONS.length)
    .map((p, i) => r.oneOf(p, `tracing.propagation[${i}]`, PROPAGATIONS, 'w3c'));
  if (!propagation.includes('w3c'))
    r.report('tracing.propagation', 'must list w3c: traceparent is always sent, B3 only besides it');
  if (new Set(propagation).size !== propagation.length)
    r.report('tracing.propagation', 'lists a format twice');
  const b = r.optionalMapping(o.batch, 'tracing.batch', [
    'max_queue',
    'max_batch',
    'interval',
    'export_timeout',
  ]);
  const maxQueue = r.count(b.max_queue, 'tracing.batch.max_queue', 1, MAX_QUEUE, DEFAULT_BATCH.maxQueue);
  const maxBatch = r.count(
    b.max_batch,
    'tracing.batch.max_batch',
    1,
    MAX_QUEUE,
    Math.min(DEFAULT_BATCH.maxBatch, maxQueue),
  );
  if (maxBatch > maxQueue)
    r.report('tracing.batch.max_batch', `must be at most max_queue (${maxQueue}) (got ${maxBatch})`);
  return Object.freeze({
    collector,
    sampleRatio: r.ratio(o.sample_ratio, 'tracing.sample_ratio', DEFAULT_SAMPLE_RATIO),
    serviceName: String(serviceName),
    propagation: Object.freeze(propagation),
    batch: Object.freeze({
      maxQueue,
      maxBatch,
      intervalMs: r.duration(
        b.interval,
        'tracing.batch.interval',
        { minMs: 10, maxMs: 60_000 },
        DEFAULT_BATCH.intervalMs,
      ),
      exportTimeoutMs: r.duration(
        b.export_timeout,
        'tracing.batch.export_timeout',
        { minMs: 100, maxMs: 60_000 },
        DEFAULT_BATCH.exportTimeoutMs,
      ),
    }),
  });
}

export function checkAccessLog(raw: unknown, r: ConfigReader, configFile: string): AccessLogConfig | null {
  if (raw === undefined) return null;
  const o = r.mapping(raw, 'access_log', ['sample_ratio', 'path']);
  const where = o.path ?? 'stdout';
  if (typeof where !== 'string' || where === '' || where.length > 4096 || where.includes('\0')) {
    r.report('access_log.path', `must be stdout or a file path (got ${quote(where)})`);
  }
  return Object.freeze({
    sampleRatio: r.ratio(o.sample_ratio, 'access_log.sample_ratio', 1),
    path: where === 'stdout' ? 'stdout' : path.resolve(path.dirname(configFile), String(where)),
  });
}

function checkCollector(value: unknown, r: ConfigReader): string {
  const at = 'tracing.collector';
  if (typeof value !== 'string' || value.length > MAX_URL_CHARS) {
    r.report(
      at,
      `must be the collector's OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces (got ${quote(value)})`,
    );
    return '';
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    r.report(at, `${quote(value)} is not a URL`);
    return '';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    r.report(at, `must be an http or https URL (got ${quote(value)})`);
  else if (url.username !== '' || url.password !== '')
    r.report(at, 'must not carry credentials: they would be logged with the URL');
  return value;
}
