// Keeps the mesh's children: starts them (recording each in run.json), notices the first one that
// dies while the mesh is not stopping, and stops them all in reverse start order, each bounded.
// `guard` makes every startup wait fail at once when a child dies or a stop is asked for, instead of
// waiting out its timeout.
import type { Clock } from '../spiffe/clock.js';
import type { ProcessTable } from '../spiffe/data-dir-lock.js';
import { SigilError } from '../spiffe/errors.js';
import { type Child, type ChildExit, type ChildSpec, spawnChild } from './child.js';
import { removeRunRecord, writeRunRecord } from './run-record.js';

/** How long a child may take to stop after SIGTERM before it gets SIGKILL. */
export const STOP_GRACE_MS = 5_000;

/** Thrown by `guard` when a stop was asked for; not a failure. */
export class StopRequested extends Error {
  constructor(readonly reason: string) {
    super(`stop requested (${reason})`);
  }
}

export class Supervisor {
  private readonly children: Child[] = [];
  private stopping = false;
  private notifyDeath: (death: Death) => void = () => {};
  /** Resolves with the first child that exits while the mesh is not stopping. */
  readonly death: Promise<Death>;
  private readonly stopAsked: Promise<never>;
  private readonly haltController = new AbortController();
  /** Aborted once a stop is asked for or a child died: background waits end with it. */
  readonly halted: AbortSignal = this.haltController.signal;

  constructor(
    private readonly options: {
      clock: Clock;
      runFile: string;
      processes: ProcessTable;
      /** Aborted when the user asks the mesh to stop; its reason is the signal's name. */
      signal: AbortSignal;
    },
  ) {
    this.death = new Promise((resolve) => {
      this.notifyDeath = resolve;
    });
    void this.death.then(() => this.haltController.abort());
    if (options.signal.aborted) this.haltController.abort();
    else options.signal.addEventListener('abort', () => this.haltController.abort(), { once: true });
    this.stopAsked = new Promise<never>((_, reject) => {
      const stop = () => reject(new StopRequested(String(options.signal.reason ?? 'signal')));
      if (options.signal.aborted) stop();
      else options.signal.addEventListener('abort', stop, { once: true });
    });
    // Only ever observed through guard(); a rejection nobody awaits yet is not an error.
    this.stopAsked.catch(() => {});
  }

  /** Starts a child; refused (StopRequested) once the mesh is halting, so none outlives stopAll. */
  start(spec: ChildSpec): Child {
    if (this.stopping || this.halted.aborted) {
      throw new StopRequested(this.options.signal.aborted ? String(this.options.signal.reason) : 'halting');
    }
    const child = spawnChild(spec, this.options.clock);
    this.children.push(child);
    void child.exited.then((exit) => {
      if (!this.stopping) this.notifyDeath({ child, exit });
    });
    writeRunRecord(
      this.options.runFile,
      this.children.map((c) => ({
        name: c.name,
        pid: c.pid,
        startTime: this.options.processes.startTime(c.pid),
      })),
    );
    return child;
  }

  /** `work`, unless a child dies first (ERR_UNAVAILABLE naming it) or a stop is asked (StopRequested). */
  guard<T>(work: Promise<T>): Promise<T> {
    const died = this.death.then((death): never => {
      throw new ComponentFailed(death.child, `exited unexpectedly (${describeExit(death.exit)})`);
    });
    return Promise.race([work, died, this.stopAsked]);
  }

  pids(): Record<string, number> {
    return Object.fromEntries(this.children.map((c) => [c.name, c.pid]));
  }

  /** Stops every child, last started first; returns their names in that order. */
  async stopAll(): Promise<string[]> {
    this.stopping = true;
    const order = [...this.children].reverse();
    for (const child of order) await child.stop(STOP_GRACE_MS);
    removeRunRecord(this.options.runFile);
    return order.map((c) => c.name);
  }
}

export interface Death {
  readonly child: Child;
  readonly exit: ChildExit;
}

/** How a child ended, for messages: `exit code 1`, `signal SIGKILL`. */
export function describeExit(exit: ChildExit): string {
  return exit.signal !== null ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

/** A component died or never became ready; carries its child, whose log tells why. */
export class ComponentFailed extends SigilError {
  constructor(
    readonly child: Child,
    message: string,
  ) {
    super('ERR_UNAVAILABLE', message, { reason: 'component-failed' });
  }
}
