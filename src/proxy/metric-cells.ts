// Metric cells: a label combination resolved once into a plain object that the hot path bumps,
// totals reaching prom-client only when /metrics is scraped (see metrics.ts for why).
import { Counter, type Registry } from 'prom-client';

/** One label combination of a counter, bumped in place. */
export interface CountCell {
  value: number;
}

export interface MetricShape {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
}

/** Label values joined with a separator that cannot occur in them (NUL is not valid in any label we use). */
export function cellKey(values: readonly string[]): string {
  return values.join('\u0000');
}

function labelsOf(names: readonly string[], values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  names.forEach((name, i) => {
    labels[name] = values[i]!;
  });
  return labels;
}

/** A prom-client Counter fed from cells at scrape time; cells never reset, so totals stay monotonic. */
export class CellCounter {
  private readonly cells = new Map<string, { labels: Record<string, string>; cell: CountCell }>();

  constructor(
    registry: Registry,
    private readonly shape: MetricShape,
  ) {
    const cells = this.cells;
    new Counter({
      name: shape.name,
      help: shape.help,
      labelNames: shape.labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const { labels, cell } of cells.values()) if (cell.value > 0) this.inc(labels, cell.value);
      },
    });
  }

  cell(values: readonly string[]): CountCell {
    const key = cellKey(values);
    let entry = this.cells.get(key);
    if (entry === undefined) {
      entry = { labels: labelsOf(this.shape.labelNames, values), cell: { value: 0 } };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }
}

export class HistogramCell {
  /** Per-bucket (not cumulative) counts; the last slot is above the largest bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

/**
 * A histogram in prom-client's exposition, fed from cells. prom-client's own Histogram cannot be
 * given bucket counts, so this registers an object with the `get()` its Registry reads from every
 * metric (the same shape Histogram.get() returns).
 */
export class CellHistogram {
  private readonly cells = new Map<string, { labels: Record<string, string>; cell: HistogramCell }>();

  constructor(
    registry: Registry,
    private readonly shape: MetricShape & { readonly buckets: readonly number[] },
  ) {
    const { name, help } = shape;
    const metric = {
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => ({ name, help, type: 'histogram', aggregator: 'sum', values: this.values() }),
      reset: () => {
        for (const { cell } of this.cells.values()) {
          cell.counts.fill(0);
          cell.sum = 0;
          cell.count = 0;
        }
      },
    };
    registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  cell(values: readonly string[]): HistogramCell {
    const key = cellKey(values);
    let entry = this.cells.get(key);
    if (entry === undefined) {
      entry = {
        labels: labelsOf(this.shape.labelNames, values),
        cell: new HistogramCell(this.shape.buckets),
      };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }

  private values(): Array<{ labels: Record<string, string | number>; value: number; metricName: string }> {
    const { name, buckets } = this.shape;
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const { labels, cell } of this.cells.values()) {
      if (cell.count === 0) continue;
      let cumulative = 0;
      buckets.forEach((bound, i) => {
        cumulative += cell.counts[i]!;
        values.push({ labels: { ...labels, le: bound }, value: cumulative, metricName: `${name}_bucket` });
      });
      values.push({ labels: { ...labels, le: '+Inf' }, value: cell.count, metricName: `${name}_bucket` });
      values.push({ labels, value: cell.sum, metricName: `${name}_sum` });
      values.push({ labels, value: cell.count, metricName: `${name}_count` });
    }
    return values;
  }
}
