// Who may hold a Workload API connection: the decisions, apart from sockets, on an injected Clock.
// The socket is open to every local user, and each connection costs the agent descriptors and
// memory; 600 idle connections once locked every workload out. So: a cap per uid, a total cap (the
// server derives it from the descriptor limit), and an idle timeout for connections with no call
// open. When the table is full a newcomer may still get in by evicting an idle connection, taken
// from the uid holding the most (at least two more than the newcomer's uid, so two uids cannot
// trade places forever) or else from its own uid: a flood of idle connections evicts itself, and
// a uid that holds few connections always finds room. Busy connections are never evicted; the
// per-uid cap, kept below the total, is what leaves room for others while one uid's are all busy.

import type { Clock } from '../../spiffe/clock.js';
import { formatDuration } from '../../spiffe/duration.js';

export interface ConnectionLimits {
  /** Connections held at once, all uids together. */
  readonly maxConnections: number;
  /** Connections one uid may hold at once. */
  readonly maxConnectionsPerUid: number;
  /** A connection with no call open for this long is closed. */
  readonly idleTimeoutMs: number;
}

export type Admission =
  | { readonly admitted: true; readonly evicted?: Eviction }
  | { readonly admitted: false; readonly cap: 'uid-cap' | 'total-cap'; readonly reason: string };

export interface Eviction {
  readonly id: string;
  readonly uid: number;
  readonly reason: string;
}

interface Entry {
  readonly id: string;
  readonly uid: number;
  openCalls: number;
  /** When the last call ended (or the connection was accepted). */
  idleSinceMs: number;
  cancelIdleTimer: (() => void) | undefined;
}

export interface ConnectionTableOptions {
  readonly limits: ConnectionLimits;
  readonly clock: Clock;
  /** Called when a connection has been idle for `idleTimeoutMs`; it is already out of the table. */
  readonly onIdle: (id: string, uid: number, reason: string) => void;
}

export class ConnectionTable {
  private readonly entries = new Map<string, Entry>();
  private readonly byUid = new Map<number, Set<Entry>>();

  constructor(private readonly options: ConnectionTableOptions) {}

  get size(): number {
    return this.entries.size;
  }

  held(uid: number): number {
    return this.byUid.get(uid)?.size ?? 0;
  }

  /**
   * Admits connection `id` of `uid`, possibly by evicting another (which the caller must close; it
   * is already out of the table), or says why not.
   */
  admit(id: string, uid: number): Admission {
    const { maxConnections, maxConnectionsPerUid } = this.options.limits;
    const held = this.held(uid);
    let victim: Entry | undefined;
    let why = '';
    if (held >= maxConnectionsPerUid) {
      victim = this.oldestIdle(uid);
      if (!victim) {
        return refuse(
          'uid-cap',
          `connection cap reached for uid ${uid} (${held} of ${maxConnectionsPerUid}, none idle)`,
        );
      }
      why = `uid ${uid} is at its cap of ${maxConnectionsPerUid} connections; its longest-idle one makes room`;
    } else if (this.entries.size >= maxConnections) {
      const heavier = this.heaviestWithIdle(held + 2);
      victim = heavier ?? this.oldestIdle(uid);
      if (!victim) {
        return refuse(
          'total-cap',
          `total connection cap reached (${this.entries.size} of ${maxConnections}), and no idle connection of uid ${uid} or of a uid holding more can be closed`,
        );
      }
      why = heavier
        ? `all ${maxConnections} connections are taken; uid ${victim.uid} holds ${this.held(victim.uid)} and uid ${uid} ${held}`
        : `all ${maxConnections} connections are taken; uid ${uid}'s longest-idle one makes room`;
    }
    if (victim) this.remove(victim.id);
    const entry: Entry = {
      id,
      uid,
      openCalls: 0,
      idleSinceMs: this.options.clock.nowMs(),
      cancelIdleTimer: undefined,
    };
    this.entries.set(id, entry);
    const ofUid = this.byUid.get(uid) ?? new Set<Entry>();
    this.byUid.set(uid, ofUid);
    ofUid.add(entry);
    this.armIdleTimer(entry);
    return victim
      ? { admitted: true, evicted: { id: victim.id, uid: victim.uid, reason: why } }
      : { admitted: true };
  }

  /** Forgets a connection (it closed). */
  remove(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.cancelIdleTimer?.();
    this.entries.delete(id);
    const ofUid = this.byUid.get(entry.uid)!;
    ofUid.delete(entry);
    if (ofUid.size === 0) this.byUid.delete(entry.uid);
  }

  /** Marks a call open on `id` until the returned function is called (once; later calls do nothing). */
  openCall(id: string): () => void {
    const entry = this.entries.get(id);
    if (!entry) return () => {};
    entry.openCalls++;
    entry.cancelIdleTimer?.();
    entry.cancelIdleTimer = undefined;
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      if (--entry.openCalls > 0 || this.entries.get(id) !== entry) return;
      entry.idleSinceMs = this.options.clock.nowMs();
      this.armIdleTimer(entry);
    };
  }

  private armIdleTimer(entry: Entry): void {
    const { idleTimeoutMs } = this.options.limits;
    entry.cancelIdleTimer = this.options.clock.setTimer(idleTimeoutMs, () => {
      if (this.entries.get(entry.id) !== entry || entry.openCalls > 0) return;
      this.remove(entry.id);
      this.options.onIdle(
        entry.id,
        entry.uid,
        `idle timeout: no call open for ${formatDuration(idleTimeoutMs)}`,
      );
    });
  }

  /** The longest-idle connection of `uid` with no call open. */
  private oldestIdle(uid: number): Entry | undefined {
    let oldest: Entry | undefined;
    for (const entry of this.byUid.get(uid) ?? []) {
      if (entry.openCalls === 0 && (!oldest || entry.idleSinceMs < oldest.idleSinceMs)) oldest = entry;
    }
    return oldest;
  }

  /** The longest-idle connection of the uid holding the most connections, among uids holding at least `atLeast` and having an idle one. */
  private heaviestWithIdle(atLeast: number): Entry | undefined {
    const uids = [...this.byUid]
      .filter(([, set]) => set.size >= atLeast)
      .sort((a, b) => b[1].size - a[1].size);
    for (const [uid] of uids) {
      const idle = this.oldestIdle(uid);
      if (idle) return idle;
    }
    return undefined;
  }
}

function refuse(cap: 'uid-cap' | 'total-cap', reason: string): Admission {
  return { admitted: false, cap, reason };
}
