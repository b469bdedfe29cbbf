// The sync loop against a fake server connection on a ManualClock: every way a stream stops comes
// back to the loop and is backed off, except an end we caused ourselves.
import { EventEmitter } from 'node:events';
import { type ClientReadableStream, status } from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { SyncEntriesResponse } from '../../../proto/agent-api.js';
import { ManualClock } from '../../spiffe/clock.js';
import { parseTrustDomain } from '../../spiffe/id.js';
import type { SyncUpdate } from '../manager/types.js';
import { runSyncLoop, type SyncConnection } from './sync.js';

/** A stream like grpc-js's: emits 'data', 'error', 'end'; cancel() ends it with CANCELLED. */
class FakeStream extends EventEmitter {
  cancelled = false;
  /** What a 'data' listener threw: in grpc-js it would escape into the library. */
  escaped: unknown[] = [];

  push(message: Partial<SyncEntriesResponse>): void {
    try {
      this.emit('data', { upserted: [], deletedIds: [], revision: 1, ...message });
    } catch (err) {
      this.escaped.push(err);
    }
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    queueMicrotask(() =>
      this.emit(
        'error',
        Object.assign(new Error('Cancelled'), { code: status.CANCELLED, details: 'Cancelled' }),
      ),
    );
  }
}

/** Streams past this many are left open: a loop that never waits fails the test instead of hanging it. */
const MAX_STREAMS = 200;

class FakeConnection implements SyncConnection {
  readonly address = 'fake:1';
  generation = 0;
  readonly streams: FakeStream[] = [];
  constructor(private readonly onOpen: (stream: FakeStream) => void) {}

  syncEntries(): ClientReadableStream<SyncEntriesResponse> {
    const stream = new FakeStream();
    this.streams.push(stream);
    if (this.streams.length <= MAX_STREAMS) queueMicrotask(() => this.onOpen(stream));
    return stream as unknown as ClientReadableStream<SyncEntriesResponse>;
  }
}

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function start(connection: FakeConnection, clock: ManualClock, applied: SyncUpdate[] = []) {
  const abort = new AbortController();
  const failures: unknown[] = [];
  const done = runSyncLoop({
    connection,
    manager: { applySync: (update) => applied.push(update) },
    clock,
    random: () => 1,
    logger: pino({ level: 'silent' }),
    trustDomain: parseTrustDomain('example.org'),
    reconcileIntervalMs: 5 * 60_000,
    signal: abort.signal,
    onConnected: () => {},
    onBundle: () => {},
    onEvicted: async () => false,
    onFailure: (err) => failures.push(err),
  });
  stops.push(async () => {
    abort.abort();
    await clock.advance(0);
    await done;
  });
  return { failures };
}

describe('runSyncLoop', () => {
  it('backs off from a server that ends every stream at once (no hot loop)', async () => {
    const clock = new ManualClock();
    // Each stream delivers a snapshot, then the server ends it.
    const connection = new FakeConnection((stream) => {
      stream.push({ snapshotBegin: true, snapshotEnd: true });
      stream.emit('end');
    });
    start(connection, clock);
    await clock.advance(0);
    // Backoff 500 ms doubling (random = 1: the full ceiling): 0.5 + 1 + 2 + 4 = 7.5 s for 5 streams.
    await clock.advance(10_000);
    expect(connection.streams.length).toBeGreaterThanOrEqual(2);
    expect(connection.streams.length).toBeLessThanOrEqual(6);
    await clock.advance(60_000);
    // Capped at 30 s per retry once the ceiling is reached: a handful more, not thousands.
    expect(connection.streams.length).toBeLessThanOrEqual(9);
  });

  it('backs off after CANCELLED that we did not cause', async () => {
    const clock = new ManualClock();
    const connection = new FakeConnection((stream) => stream.cancel());
    start(connection, clock);
    await clock.advance(0);
    await clock.advance(1_000);
    expect(connection.streams.length).toBeLessThanOrEqual(3);
  });

  it('reconnects at once after our own reconnect (renewed SVID)', async () => {
    const clock = new ManualClock();
    let first = true;
    const connection = new FakeConnection((stream) => {
      if (!first) return;
      first = false;
      connection.generation++;
      stream.cancel();
    });
    start(connection, clock);
    await clock.advance(0);
    expect(connection.streams).toHaveLength(2);
  });

  it('cancels a stream whose pushed update cannot be decoded, and reconnects after a delay', async () => {
    const clock = new ManualClock();
    const applied: SyncUpdate[] = [];
    const connection = new FakeConnection((stream) => {
      if (connection.streams.length === 1) {
        stream.push({ bundle: Buffer.from('{not a bundle') });
      } else {
        stream.push({ upserted: [], revision: 7 });
      }
    });
    const { failures } = start(connection, clock, applied);
    await clock.advance(0);
    const [bad] = connection.streams;
    expect(bad!.escaped).toEqual([]);
    expect(bad!.cancelled).toBe(true);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ code: 'ERR_BUNDLE_INVALID' });
    // Not at once: after the backoff delay.
    expect(connection.streams).toHaveLength(1);
    await clock.advance(500);
    expect(connection.streams).toHaveLength(2);
    expect(applied.map((u) => u.revision)).toEqual([7]);
  });
});
