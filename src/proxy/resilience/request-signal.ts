// Cancellation of one proxied request (the caller left, a timeout fired), read by every layer down
// to the relay. Not an AbortController: on Node 20 one costs about 3 µs with its listener (EventTarget
// and its brand checks), measured against ~67 µs of CPU per request in one sidecar of a saturated
// pair, and every request would pay it. This is a plain object with a listener list.

export interface RequestSignal {
  readonly aborted: boolean;
  /** Why: a ProxyError when a layer gave up (the relay then fails with it); undefined until aborted. */
  readonly reason: unknown;
  /** Calls `listener` once on abort, at once when already aborted. */
  onAbort(listener: (reason: unknown) => void): void;
}

export class RequestAbort implements RequestSignal {
  private isAborted = false;
  private abortReason: unknown;
  private listeners: ((reason: unknown) => void)[] | undefined;

  get aborted(): boolean {
    return this.isAborted;
  }

  get reason(): unknown {
    return this.abortReason;
  }

  onAbort(listener: (reason: unknown) => void): void {
    if (this.isAborted) {
      listener(this.abortReason);
      return;
    }
    if (this.listeners === undefined) this.listeners = [listener];
    else this.listeners.push(listener);
  }

  /** Aborts once; later calls do nothing. */
  abort(reason?: unknown): void {
    if (this.isAborted) return;
    this.isAborted = true;
    this.abortReason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener(reason);
  }
}
