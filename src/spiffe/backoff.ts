// Retry delays (Workload API watches, the agent's server sync, SVID minting): exponential with jitter (each delay between half and all of its ceiling), capped, immutable (each
// `next()` returns a new value) and checked when built. Jitter spreads the reconnects of many
// workloads after an agent restart so they do not all land on the new agent at the same instant.
import { SigilError } from './errors.js';

export interface BackoffOptions {
  /** First delay, in milliseconds. Defaults to 1s (go-spiffe's initial watch backoff). */
  initialMs?: number;
  /** Largest delay, in milliseconds. Defaults to 30s. */
  maxMs?: number;
}

const DEFAULT_INITIAL_MS = 1_000;
const DEFAULT_MAX_MS = 30_000;

export class Backoff {
  private constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly attempt: number,
  ) {}

  static create(options: BackoffOptions = {}): Backoff {
    const initialMs = options.initialMs ?? DEFAULT_INITIAL_MS;
    const maxMs = options.maxMs ?? DEFAULT_MAX_MS;
    if (!Number.isFinite(initialMs) || initialMs <= 0) {
      throw new SigilError(
        'ERR_CONFIG_INVALID',
        `backoff: initialMs must be a positive number (got ${initialMs})`,
      );
    }
    if (!Number.isFinite(maxMs) || maxMs < initialMs) {
      throw new SigilError(
        'ERR_CONFIG_INVALID',
        `backoff: maxMs must not be less than initialMs (got ${maxMs})`,
      );
    }
    return new Backoff(initialMs, maxMs, 0);
  }

  /** The delay before the next attempt: a random point in [ceiling/2, ceiling]. */
  delayMs(random: () => number): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    return ceiling / 2 + (ceiling / 2) * random();
  }

  /** The backoff after `failures` consecutive failures (0 = fresh). */
  afterFailures(failures: number): Backoff {
    return new Backoff(this.initialMs, this.maxMs, Math.max(0, failures));
  }

  next(): Backoff {
    return new Backoff(this.initialMs, this.maxMs, this.attempt + 1);
  }

  reset(): Backoff {
    return new Backoff(this.initialMs, this.maxMs, 0);
  }
}

/** Waits `delayMs` on `clock`, or less when `signal` aborts first (never rejects). */
export function sleep(
  clock: { setTimer(delayMs: number, fire: () => void): () => void },
  delayMs: number,
  signal: AbortSignal,
): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const cancel = clock.setTimer(delayMs, done);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      cancel();
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
