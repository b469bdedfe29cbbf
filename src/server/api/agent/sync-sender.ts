// Writes a SyncEntries stream without letting a slow agent cost unbounded memory. grpc-js buffers
// whatever it is given; an agent that stops reading (stuck, or a hostile client with a tiny HTTP/2
// window) used to accumulate every delta for as long as it stayed connected. Here a write that
// returns false stops writing: later updates wait in a queue of at most `maxPendingMessages`; past
// that they are all dropped for one fresh snapshot, sent when the stream drains (the agent replaces
// its cache on a snapshot, so nothing is lost). A stream that does not drain within `drainTimeoutMs`
// is closed. Deciding what a snapshot holds is the caller's (`snapshot()`).
import type { Clock } from '../../../spiffe/clock.js';

/** What the sender needs of the gRPC call: grpc-js's writable stream has all of it. */
export interface SyncStream<M> {
  write(message: M): boolean;
  on(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

export interface SyncSenderOptions<M> {
  readonly clock: Clock;
  /** Updates held while the agent is not reading, before they are traded for one snapshot. */
  readonly maxPendingMessages: number;
  /** How long the stream may stay undrained before `onStalled`. */
  readonly drainTimeoutMs: number;
  /** The whole current state, as the pages of a snapshot. */
  snapshot(): readonly M[];
  /** The agent fell far behind: its queued updates were dropped for a snapshot. */
  onBehind(): void;
  /** The stream stayed undrained for drainTimeoutMs; the caller ends it. */
  onStalled(): void;
  /** The number of held updates changed by `delta` (for a gauge over all streams). */
  onPendingChange(delta: number): void;
}

export class SyncSender<M> {
  private pending: M[] = [];
  private blocked = false;
  private needsSnapshot = false;
  private closed = false;
  private cancelTimer: () => void = () => {};
  private readonly drained = () => this.drain();

  constructor(
    private readonly stream: SyncStream<M>,
    private readonly options: SyncSenderOptions<M>,
  ) {
    stream.on('drain', this.drained);
  }

  /** Sends `messages` in order and together (the pages of one snapshot are never split by a drop). */
  send(...messages: M[]): void {
    if (this.closed) return;
    if (!this.blocked) {
      this.write(messages);
      return;
    }
    // The snapshot sent at the next drain will hold whatever these updates carry.
    if (this.needsSnapshot) return;
    if (this.pending.length + messages.length > this.options.maxPendingMessages) {
      this.setPending([]);
      this.needsSnapshot = true;
      this.options.onBehind();
      return;
    }
    this.setPending([...this.pending, ...messages]);
  }

  /** Stops: drops held updates and the timer. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelTimer();
    this.setPending([]);
    this.stream.off('drain', this.drained);
  }

  private write(messages: readonly M[]): void {
    let writable = true;
    // All of them even past a full buffer: one snapshot is bounded by the agent's own entries, and
    // splitting it would leave the agent with half a state.
    for (const message of messages) writable = this.stream.write(message) && writable;
    if (!writable) this.block();
  }

  private block(): void {
    this.blocked = true;
    this.cancelTimer();
    this.cancelTimer = this.options.clock.setTimer(this.options.drainTimeoutMs, () => {
      if (this.blocked && !this.closed) this.options.onStalled();
    });
  }

  private drain(): void {
    if (this.closed || !this.blocked) return;
    this.blocked = false;
    this.cancelTimer();
    if (this.needsSnapshot) {
      this.needsSnapshot = false;
      this.write(this.options.snapshot());
      return;
    }
    const queued = this.pending;
    this.setPending([]);
    for (let i = 0; i < queued.length; i++) {
      this.write([queued[i]!]);
      if (this.blocked) {
        // Full again: the rest waits for the next drain, still counted against the bound.
        this.setPending(queued.slice(i + 1));
        return;
      }
    }
  }

  private setPending(next: M[]): void {
    const delta = next.length - this.pending.length;
    this.pending = next;
    if (delta !== 0) this.options.onPendingChange(delta);
  }
}
