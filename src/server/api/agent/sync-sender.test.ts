import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../spiffe/clock.js';
import { SyncSender } from './sync-sender.js';

/** A stream whose buffer holds `capacity` messages until the test drains it, as a grpc-js call would. */
class FakeStream extends EventEmitter {
  readonly written: string[] = [];
  buffered = 0;
  constructor(private readonly capacity: number) {
    super();
  }
  write(message: string): boolean {
    this.written.push(message);
    this.buffered++;
    return this.buffered < this.capacity;
  }
  /** The agent read everything. */
  readAll(): void {
    this.buffered = 0;
    this.emit('drain');
  }
}

function setup(capacity: number, state = ['s1', 's2']) {
  const clock = new ManualClock();
  const stream = new FakeStream(capacity);
  const events: string[] = [];
  let pending = 0;
  let maxPending = 0;
  const sender = new SyncSender<string>(stream, {
    clock,
    maxPendingMessages: 4,
    drainTimeoutMs: 30_000,
    snapshot: () => state.map((page) => `snapshot:${page}`),
    onBehind: () => events.push('behind'),
    onStalled: () => events.push('stalled'),
    onPendingChange: (delta) => {
      pending += delta;
      maxPending = Math.max(maxPending, pending);
    },
  });
  return { clock, stream, events, sender, pending: () => pending, maxPending: () => maxPending };
}

describe('SyncSender', () => {
  it('writes straight through while the stream takes messages', () => {
    const { stream, sender, events } = setup(100);
    sender.send('a');
    sender.send('b', 'c');
    expect(stream.written).toEqual(['a', 'b', 'c']);
    expect(events).toEqual([]);
  });

  it('stops writing when the buffer is full, holds later updates, and sends them in order on drain', () => {
    const { stream, sender, pending } = setup(2);
    sender.send('a');
    sender.send('b');
    sender.send('c');
    sender.send('d');
    expect(stream.written).toEqual(['a', 'b']);
    expect(pending()).toBe(2);
    stream.readAll();
    expect(stream.written).toEqual(['a', 'b', 'c', 'd']);
    expect(pending()).toBe(0);
  });

  it('holds at most maxPendingMessages; past it, drops them all and sends one fresh snapshot on drain', () => {
    const { stream, sender, events, pending, maxPending } = setup(1);
    sender.send('a');
    for (let i = 0; i < 100; i++) sender.send(`delta${i}`);
    expect(maxPending()).toBe(4);
    expect(pending()).toBe(0);
    expect(events).toEqual(['behind']);
    stream.readAll();
    expect(stream.written).toEqual(['a', 'snapshot:s1', 'snapshot:s2']);
  });

  it('keeps the pages of a snapshot together past a full buffer', () => {
    const { stream, sender } = setup(1);
    sender.send('p1', 'p2', 'p3');
    expect(stream.written).toEqual(['p1', 'p2', 'p3']);
  });

  it('reports a stream that stays undrained for drainTimeoutMs, and not one that drains in time', async () => {
    const { clock, stream, sender, events } = setup(1);
    sender.send('a');
    await clock.advance(29_000);
    stream.readAll();
    sender.send('b');
    await clock.advance(29_999);
    expect(events).toEqual([]);
    await clock.advance(1);
    expect(events).toEqual(['stalled']);
  });

  it('drops held updates and its timer on close', async () => {
    const { clock, stream, sender, events, pending } = setup(1);
    sender.send('a');
    sender.send('b');
    sender.close();
    expect(pending()).toBe(0);
    await clock.advance(60_000);
    stream.readAll();
    sender.send('c');
    expect(stream.written).toEqual(['a']);
    expect(events).toEqual([]);
  });
});
