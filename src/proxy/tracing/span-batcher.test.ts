import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { type BatchExporter, SpanBatcher } from './span-batcher.js';

/** An exporter whose exports the test answers (or not). */
function fakeExporter() {
  const calls: Array<{ items: number[]; done: (result: { code: number; error?: Error }) => void }> = [];
  const exporter: BatchExporter<number> & { shutdowns: number } = {
    shutdowns: 0,
    export(items, done) {
      calls.push({ items: [...items], done });
    },
    async shutdown() {
      exporter.shutdowns++;
    },
  };
  return { exporter, calls };
}

function counts() {
  const seen = { exported: 0, dropped: 0, failures: 0 };
  return {
    seen,
    events: {
      exported: (n: number) => (seen.exported += n),
      dropped: (n: number) => (seen.dropped += n),
      exportFailed: () => seen.failures++,
    },
  };
}

const OPTIONS = { maxQueue: 10, maxBatch: 4, intervalMs: 5_000, exportTimeoutMs: 10_000 };

describe('SpanBatcher', () => {
  it('exports a full batch at once, and a partial one after the interval', async () => {
    const clock = new ManualClock();
    const { exporter, calls } = fakeExporter();
    const { seen, events } = counts();
    const batcher = new SpanBatcher(exporter, OPTIONS, clock, events);
    for (let i = 0; i < 5; i++) batcher.add(i);
    expect(calls.map((c) => c.items)).toEqual([[0, 1, 2, 3]]);
    calls[0]!.done({ code: 0 });
    expect(seen.exported).toBe(4);
    expect(calls).toHaveLength(1);
    await clock.advance(4_999);
    expect(calls).toHaveLength(1);
    await clock.advance(1);
    expect(calls[1]!.items).toEqual([4]);
    calls[1]!.done({ code: 0 });
    expect(seen).toEqual({ exported: 5, dropped: 0, failures: 0 });
  });

  it('keeps one export in flight and drops what overflows the queue, counting it', () => {
    const clock = new ManualClock();
    const { exporter, calls } = fakeExporter();
    const { seen, events } = counts();
    const batcher = new SpanBatcher(exporter, OPTIONS, clock, events);
    // 4 leave in the first batch; the queue then holds 10 more; the remaining 6 are dropped.
    for (let i = 0; i < 20; i++) batcher.add(i);
    expect(calls).toHaveLength(1);
    expect(batcher.queued).toBe(10);
    expect(seen.dropped).toBe(6);
    calls[0]!.done({ code: 0 });
    // The next full batch leaves as soon as the first export is done.
    expect(calls).toHaveLength(2);
    expect(calls[1]!.items).toEqual([4, 5, 6, 7]);
  });

  it('drops and counts the spans of a failed export, and of one that times out', async () => {
    const clock = new ManualClock();
    const { exporter, calls } = fakeExporter();
    const { seen, events } = counts();
    const batcher = new SpanBatcher(exporter, OPTIONS, clock, events);
    for (let i = 0; i < 4; i++) batcher.add(i);
    calls[0]!.done({ code: 1, error: new Error('connection refused') });
    expect(seen).toEqual({ exported: 0, dropped: 4, failures: 1 });
    for (let i = 0; i < 4; i++) batcher.add(i);
    await clock.advance(10_000);
    expect(seen).toEqual({ exported: 0, dropped: 8, failures: 2 });
    // A late answer changes nothing.
    calls[1]!.done({ code: 0 });
    expect(seen.exported).toBe(0);
    // And the next batch may go.
    for (let i = 0; i < 4; i++) batcher.add(i);
    expect(calls).toHaveLength(3);
  });

  it('an exporter that throws counts as a failed export', () => {
    const clock = new ManualClock();
    const { seen, events } = counts();
    const batcher = new SpanBatcher(
      {
        export() {
          throw new Error('boom');
        },
        shutdown: async () => {},
      },
      OPTIONS,
      clock,
      events,
    );
    for (let i = 0; i < 4; i++) batcher.add(i);
    expect(seen).toEqual({ exported: 0, dropped: 4, failures: 1 });
    expect(clock.pendingTimers).toBe(0);
  });

  it('close exports what is queued, then shuts the exporter down; later spans are dropped', async () => {
    const clock = new ManualClock();
    const { exporter, calls } = fakeExporter();
    const { seen, events } = counts();
    const batcher = new SpanBatcher(exporter, OPTIONS, clock, events);
    batcher.add(1);
    batcher.add(2);
    const closed = batcher.close();
    expect(calls[0]!.items).toEqual([1, 2]);
    calls[0]!.done({ code: 0 });
    await closed;
    expect(exporter.shutdowns).toBe(1);
    batcher.add(3);
    expect(seen).toEqual({ exported: 2, dropped: 1, failures: 0 });
  });
});
