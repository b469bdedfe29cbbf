// The connection table's decisions on a ManualClock: caps, who is evicted to make room, idle timeout.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { effectiveLimits, readOpenFileLimit } from './connection-limits.js';
import { type Admission, ConnectionTable } from './connection-table.js';

function table(limits: { maxConnections: number; maxConnectionsPerUid: number; idleTimeoutMs?: number }) {
  const clock = new ManualClock();
  const idled: string[] = [];
  const t = new ConnectionTable({
    limits: { idleTimeoutMs: 60_000, ...limits },
    clock,
    onIdle: (id, uid, reason) => idled.push(`${id}/${uid}: ${reason}`),
  });
  let next = 0;
  const connect = (uid: number): [string, Admission] => {
    const id = `c${next++}`;
    return [id, t.admit(id, uid)];
  };
  return { t, clock, idled, connect };
}

describe('ConnectionTable', () => {
  it('caps each uid; a uid at its cap makes room only by closing its own longest-idle connection', async () => {
    const { t, clock, connect } = table({ maxConnections: 100, maxConnectionsPerUid: 3 });
    const [first] = connect(1000);
    await clock.advance(10);
    const [second] = connect(1000);
    const [third] = connect(1000);
    t.openCall(second);
    t.openCall(third);
    const [, evicting] = connect(1000);
    expect(evicting).toEqual({
      admitted: true,
      evicted: {
        id: first,
        uid: 1000,
        reason: 'uid 1000 is at its cap of 3 connections; its longest-idle one makes room',
      },
    });
    const [fourth] = connect(1000); // evicts the one admitted just before, the only idle one
    t.openCall(fourth);
    expect(connect(1000)[1]).toEqual({
      admitted: false,
      cap: 'uid-cap',
      reason: 'connection cap reached for uid 1000 (3 of 3, none idle)',
    });
    expect(connect(1001)[1]).toEqual({ admitted: true });
    expect(t.held(1000)).toBe(3);
  });

  it('when full, takes an idle connection from the uid holding the most, never a busy one', () => {
    const { t, connect } = table({ maxConnections: 6, maxConnectionsPerUid: 6 });
    const flood = [0, 1, 2, 3].map(() => connect(65534)[0]);
    const busy = connect(1)[0];
    t.openCall(busy);
    connect(2);
    // uid 7 holds none: the flood (4) is the heaviest, at least two above it.
    expect(connect(7)[1]).toMatchObject({ admitted: true, evicted: { id: flood[0], uid: 65534 } });
    for (const id of flood.slice(1)) t.openCall(id);
    // Now every flood connection is busy; uid 2's only connection is idle but uid 2 holds no more than uid 8 + 1.
    expect(connect(8)[1]).toEqual({
      admitted: false,
      cap: 'total-cap',
      reason:
        'total connection cap reached (6 of 6), and no idle connection of uid 8 or of a uid holding more can be closed',
    });
    expect(t.size).toBe(6);
  });

  it('does not let two uids trade places: a uid one connection ahead is not evicted for the other', () => {
    const { connect } = table({ maxConnections: 3, maxConnectionsPerUid: 3 });
    connect(1);
    connect(1);
    const [own] = connect(2);
    // uid 2 holds 1, uid 1 holds 2: not two ahead, so uid 2 makes room from its own idle connection.
    expect(connect(2)[1]).toMatchObject({ admitted: true, evicted: { id: own, uid: 2 } });
  });

  it('closes a connection after the idle timeout with no call open, and counts from when the last call ended', async () => {
    const { t, clock, idled, connect } = table({
      maxConnections: 10,
      maxConnectionsPerUid: 10,
      idleTimeoutMs: 60_000,
    });
    const [quiet] = connect(1);
    const [active] = connect(2);
    await clock.advance(30_000);
    const end = t.openCall(active);
    await clock.advance(30_000);
    expect(idled).toEqual([`${quiet}/1: idle timeout: no call open for 1m`]);
    expect(t.size).toBe(1);
    await clock.advance(120_000);
    expect(idled).toHaveLength(1); // a call is open
    end();
    end(); // idempotent
    await clock.advance(59_999);
    expect(idled).toHaveLength(1);
    await clock.advance(1);
    expect(idled).toEqual([
      `${quiet}/1: idle timeout: no call open for 1m`,
      `${active}/2: idle timeout: no call open for 1m`,
    ]);
    expect(t.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('forgets a closed connection, timer included', async () => {
    const { t, clock, idled, connect } = table({ maxConnections: 10, maxConnectionsPerUid: 10 });
    const [id] = connect(1);
    t.remove(id);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(120_000);
    expect(idled).toEqual([]);
    expect(t.held(1)).toBe(0);
  });

  it('under random connects, calls and closes: never above its caps, never evicts a busy connection', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('connect' as const), uid: fc.integer({ min: 0, max: 4 }) }),
      fc.record({ kind: fc.constant('call' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('end' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('close' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(op, { maxLength: 200 }),
        (max, perUid, ops) => {
          const { t, connect } = table({ maxConnections: max, maxConnectionsPerUid: Math.min(perUid, max) });
          const live = new Map<string, { uid: number; calls: Array<() => void> }>();
          const pick = (n: number) => [...live.keys()][n % live.size];
          for (const o of ops) {
            if (o.kind === 'connect') {
              const [id, admission] = connect(o.uid);
              if (admission.admitted && admission.evicted) {
                expect(live.get(admission.evicted.id)!.calls).toHaveLength(0);
                live.delete(admission.evicted.id);
              }
              if (admission.admitted) live.set(id, { uid: o.uid, calls: [] });
            } else if (live.size > 0) {
              const id = pick(o.pick)!;
              const entry = live.get(id)!;
              if (o.kind === 'call') entry.calls.push(t.openCall(id));
              else if (o.kind === 'end') entry.calls.pop()?.();
              else {
                t.remove(id);
                live.delete(id);
              }
            }
            expect(t.size).toBe(live.size);
            expect(t.size).toBeLessThanOrEqual(max);
            for (let uid = 0; uid <= 4; uid++) expect(t.held(uid)).toBeLessThanOrEqual(Math.min(perUid, max));
          }
        },
      ),
    );
  });
});

describe('effectiveLimits', () => {
  const configured = {
    maxConnections: 4096,
    maxConnectionsPerUid: 256,
    maxStreamsPerConnection: 100,
    idleTimeoutMs: 1000,
  };

  it("lowers the total to what the descriptor limit leaves after the agent's reserve, two per connection", () => {
    expect(effectiveLimits(configured, 1024)).toMatchObject({
      maxConnections: 384,
      maxConnectionsPerUid: 256,
      descriptorBound: 384,
    });
    expect(effectiveLimits(configured, 1_048_576)).toMatchObject({
      maxConnections: 4096,
      maxConnectionsPerUid: 256,
    });
    expect(effectiveLimits(configured, undefined)).toMatchObject({
      maxConnections: 4096,
      descriptorBound: undefined,
    });
  });

  it('keeps the per-uid cap within the total, and at least one connection', () => {
    expect(effectiveLimits(configured, 600)).toMatchObject({
      maxConnections: 172,
      maxConnectionsPerUid: 172,
    });
    expect(effectiveLimits(configured, 100)).toMatchObject({ maxConnections: 1, maxConnectionsPerUid: 1 });
  });
});

describe('readOpenFileLimit', () => {
  it('reads the soft limit from <proc>/self/limits, and gives up quietly without one', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'sigil-limits-'));
    try {
      mkdirSync(path.join(root, 'self'));
      writeFileSync(
        path.join(root, 'self', 'limits'),
        [
          'Limit                     Soft Limit           Hard Limit           Units     ',
          'Max processes             63704                63704                processes ',
          'Max open files            1024                 4096                 files     ',
        ].join('\n'),
      );
      expect(readOpenFileLimit(root)).toBe(1024);
      expect(readOpenFileLimit(path.join(root, 'missing'))).toBeUndefined();
      expect(readOpenFileLimit()).toBeGreaterThan(0); // this process's, from the real /proc
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
