// Opt-in HTTP/1.1 pipelining to one endpoint (a service's `pipelining:`, services/pipelining-config.ts):
// a few undici Clients ("lanes"), each carrying up to `depth` requests in flight, which saves the
// pair syscalls and wakeups per request. Head-of-line blocking is bounded three ways:
// - only bodiless GET, OPTIONS and TRACE are pipelined (safe methods: the app may see one twice,
//   below); every other request, HEAD included (undici closes the connection after one), takes the
//   endpoint's ordinary pool, where it waits for nothing and nothing waits behind it;
// - a lane takes at most `depth` requests, the least busy lane is chosen, and a request no lane can
//   take goes to the ordinary pool rather than queueing;
// - when a lane's oldest request has taken longer than `stall`, the requests behind it are sent again
//   on the ordinary pool (their pipelined copies stay in the lane and their answers are dropped: the
//   slow request is not cut off), and the lane takes nothing new until it has drained.
// It does not retry: a moved request's failure reaches the layers above like any other.
import { createRequire } from 'node:module';
import type { Dispatcher, Client as UndiciClient } from 'undici';
import type { Clock } from '../../spiffe/clock.js';
import type { PipeliningConfig } from '../services/config.js';

/** undici's Client from its own file, for the reason http-relay.ts loads Pool that way (memory). */
const Client: typeof UndiciClient = createRequire(import.meta.url)('undici/lib/dispatcher/client.js');

/** Safe methods (RFC 9110 §9.2.1) without HEAD: a stalled one may reach the app twice. */
const PIPELINED_METHODS = new Set(['GET', 'OPTIONS', 'TRACE']);
/** The stall check runs every quarter of `stall`, so a stall is acted on within 1.25x its value. */
const SWEEPS_PER_STALL = 4;

/** What the balancer dispatches a try to: an undici Pool, or this. */
export interface RequestDispatcher {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
}

export interface PipeliningOptions {
  readonly origin: string;
  readonly config: PipeliningConfig;
  readonly clock: Clock;
  readonly keepAliveMs: number;
  /** The lanes' connector (the endpoint's, under the service's connection budget). */
  readonly connect: UndiciClient.Options['connect'];
  /** The endpoint's ordinary pool, read per use (it is renewed on identity rotation). */
  readonly fallback: () => RequestDispatcher;
  /** Told how many requests a stall moved, for logs. */
  readonly onStall: (moved: number) => void;
}

interface Lane {
  readonly client: UndiciClient;
  /** Tries sent on this lane and not finished, oldest first, as undici answers them. */
  readonly tries: PipelinedTry[];
  /** When the oldest try became the oldest (was sent, or the one before it finished). */
  headSinceMs: number;
  /** A stall moved its queue: it takes nothing new until it has drained. */
  isStalled: boolean;
}

export class Pipelining implements RequestDispatcher {
  private readonly lanes: Lane[] = [];
  private cancelSweep: (() => void) | null = null;

  constructor(private readonly options: PipeliningOptions) {}

  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const lane = options.body == null && PIPELINED_METHODS.has(options.method) ? this.pickLane() : null;
    if (lane === null) return this.options.fallback().dispatch(options, handler);
    const pipelinedTry = new PipelinedTry(this, lane, options, handler);
    if (lane.tries.length === 0) lane.headSinceMs = this.options.clock.nowMs();
    lane.tries.push(pipelinedTry);
    if (lane.tries.length === 2) this.armSweep();
    // blocking: false lets undici write the next request before this one's answer; idempotent:
    // true lets it send OPTIONS and TRACE behind others, as it does GET.
    lane.client.dispatch({ ...options, blocking: false, idempotent: true }, pipelinedTry);
    return true;
  }

  /** Graceful: requests in flight finish. */
  async close(): Promise<void> {
    this.cancelSweep?.();
    await Promise.all(this.lanes.map((lane) => lane.client.close()));
  }

  async destroy(): Promise<void> {
    this.cancelSweep?.();
    await Promise.all(this.lanes.map((lane) => lane.client.destroy()));
  }

  /** A try finished (or was moved and its copy finished): it leaves its lane. */
  leave(lane: Lane, pipelinedTry: PipelinedTry): void {
    const tries = lane.tries;
    const at = tries[0] === pipelinedTry ? 0 : tries.indexOf(pipelinedTry);
    if (at < 0) return;
    tries.splice(at, 1);
    if (at === 0 && tries.length > 0) lane.headSinceMs = this.options.clock.nowMs();
    if (tries.length === 0) lane.isStalled = false;
  }

  /** Sends a moved request on the ordinary pool. */
  resend(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    this.options.fallback().dispatch(options, handler);
  }

  /** The least busy lane with room, a new lane while below `connections` and every lane is busy, else null. */
  private pickLane(): Lane | null {
    const { depth, connections } = this.options.config;
    let best: Lane | null = null;
    for (const lane of this.lanes) {
      if (lane.isStalled || lane.tries.length >= depth) continue;
      if (best === null || lane.tries.length < best.tries.length) best = lane;
    }
    if ((best === null || best.tries.length > 0) && this.lanes.length < connections) return this.addLane();
    return best;
  }

  private addLane(): Lane {
    const { origin, config, keepAliveMs, connect } = this.options;
    const client = new Client(origin, { pipelining: config.depth, keepAliveTimeout: keepAliveMs, connect });
    const lane: Lane = { client, tries: [], headSinceMs: 0, isStalled: false };
    this.lanes.push(lane);
    return lane;
  }

  private armSweep(): void {
    if (this.cancelSweep !== null) return;
    const everyMs = Math.max(1, Math.floor(this.options.config.stallMs / SWEEPS_PER_STALL));
    this.cancelSweep = this.options.clock.setTimer(everyMs, this.sweep);
  }

  /** Moves the queue of every lane whose oldest try is past `stall`; runs while any lane has a queue. */
  private readonly sweep = (): void => {
    this.cancelSweep = null;
    const nowMs = this.options.clock.nowMs();
    let isQueued = false;
    for (const lane of this.lanes) {
      if (lane.isStalled || lane.tries.length < 2) continue;
      if (nowMs - lane.headSinceMs >= this.options.config.stallMs) this.stall(lane);
      else isQueued = true;
    }
    if (isQueued) this.armSweep();
  };

  private stall(lane: Lane): void {
    lane.isStalled = true;
    let moved = 0;
    for (let i = 1; i < lane.tries.length; i++) if (lane.tries[i]!.move()) moved++;
    this.options.onStall(moved);
  }
}

/** Thrown into undici for a moved copy not yet written, so undici drops it without touching the socket. */
class MovedError extends Error {
  constructor() {
    super('pipelining: request moved to another connection');
  }
}

/**
 * One request sent on a lane. Until moved it forwards undici's events to the try's handler; once
 * moved, the copy's events are dropped and a MovedTry on the ordinary pool answers the handler.
 */
class PipelinedTry implements Dispatcher.DispatchHandler {
  /** Aborts whichever copy currently answers the handler. */
  currentAbort: ((err?: Error) => void) | null = null;
  isAbortedByCaller = false;
  private isConnected = false;
  private isMoved = false;
  private isFinished = false;

  constructor(
    private readonly owner: Pipelining,
    private readonly lane: Lane,
    private readonly options: Dispatcher.DispatchOptions,
    readonly target: Dispatcher.DispatchHandler,
  ) {}

  /** Hands the handler's abort once, whichever copy is connected first; later copies only replace what it aborts. */
  connected(abort: (err?: Error) => void): void {
    this.currentAbort = abort;
    if (this.isAbortedByCaller) {
      abort();
      return;
    }
    if (this.isConnected) return;
    this.isConnected = true;
    this.target.onConnect?.((err) => {
      this.isAbortedByCaller = true;
      this.currentAbort?.(err);
    });
  }

  /** Sends this request again on the ordinary pool; false if it had already begun to answer or ended. */
  move(): boolean {
    if (this.isMoved || this.isFinished) return false;
    this.isMoved = true;
    this.currentAbort = null;
    this.owner.resend(this.options, new MovedTry(this));
    return true;
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.isMoved) throw new MovedError();
    this.connected(abort);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.isMoved) return true;
    // Once answering, the request stays here: moving it now would answer the handler twice.
    if (statusCode >= 200) this.isFinished = true;
    return this.target.onHeaders?.(statusCode, rawHeaders, resume, statusText) ?? true;
  }

  onData(chunk: Buffer): boolean {
    if (this.isMoved) return true;
    return this.target.onData?.(chunk) ?? true;
  }

  onComplete(trailers: string[] | null): void {
    this.isFinished = true;
    this.owner.leave(this.lane, this);
    if (!this.isMoved) this.target.onComplete?.(trailers);
  }

  onError(err: Error): void {
    this.isFinished = true;
    this.owner.leave(this.lane, this);
    if (!this.isMoved) this.target.onError?.(err);
  }
}

/** The ordinary pool's answer to a moved request, passed to the handler the pipelined copy had. */
class MovedTry implements Dispatcher.DispatchHandler {
  constructor(private readonly pipelined: PipelinedTry) {}

  onConnect(abort: (err?: Error) => void): void {
    this.pipelined.connected(abort);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    return this.pipelined.target.onHeaders?.(statusCode, rawHeaders, resume, statusText) ?? true;
  }

  onData(chunk: Buffer): boolean {
    return this.pipelined.target.onData?.(chunk) ?? true;
  }

  onComplete(trailers: string[] | null): void {
    this.pipelined.target.onComplete?.(trailers);
  }

  onError(err: Error): void {
    this.pipelined.target.onError?.(err);
  }
}
