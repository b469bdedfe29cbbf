import { describe, expect, it } from 'vitest';
import { ManualClock } from '../spiffe/clock.js';
import { isSigilError } from '../spiffe/errors.js';
import {
  type AuthorityTimes,
  authoritySchedule,
  shouldActivateNext,
  shouldPrepareNext,
  shouldPrune,
} from './authority-schedule.js';
import { JWT_PRUNE_GRACE_MS, type RotationOptions, resolveRotationOptions } from './rotation-options.js';
import { Scheduler } from './scheduler.js';

const MIN_MS = 60_000;
const HOUR_MS = 60 * MIN_MS;
const T0 = 1_700_000_000_000;
const CA_TTL_MS = 24 * HOUR_MS;
const LEAD_MS = 10 * MIN_MS; // default: 2 × the 5-minute bundle refresh

const active: AuthorityTimes = {
  notBeforeMs: T0,
  notAfterMs: T0 + CA_TTL_MS,
  state: 'active',
  activatedAtMs: T0,
};

function preparedAt(atMs: number | undefined): AuthorityTimes {
  return {
    notBeforeMs: atMs ?? T0 + 12 * HOUR_MS,
    notAfterMs: (atMs ?? T0 + 12 * HOUR_MS) + CA_TTL_MS,
    state: 'prepared',
    ...(atMs === undefined ? {} : { preparedAtMs: atMs }),
  };
}

function old(lastSignedExpiresAtMs?: number): AuthorityTimes {
  return {
    ...active,
    state: 'old',
    ...(lastSignedExpiresAtMs === undefined ? {} : { lastSignedExpiresAtMs }),
  };
}

describe('authoritySchedule', () => {
  it('prepares at 1/2, activates at 5/6 and prunes at expiry by default', () => {
    expect(authoritySchedule(active)).toEqual({
      prepareNextAtMs: T0 + 12 * HOUR_MS,
      activateNextAtMs: T0 + 20 * HOUR_MS,
      pruneAtMs: T0 + CA_TTL_MS,
    });
  });

  it('uses the configured fractions', () => {
    const s = authoritySchedule(active, { prepareAtFraction: 0.25, activateAtFraction: 0.75 });
    expect(s.prepareNextAtMs).toBe(T0 + 6 * HOUR_MS);
    expect(s.activateNextAtMs).toBe(T0 + 18 * HOUR_MS);
  });

  it('prepares early enough for the publish lead when the CA is short-lived', () => {
    // 18m CA: the 5/6 mark is at 15m, so the 1/2 mark (9m) leaves only 6m of the 10m lead.
    const short = { ...active, notAfterMs: T0 + 18 * MIN_MS };
    const s = authoritySchedule(short);
    expect(s.prepareNextAtMs).toBe(T0 + 5 * MIN_MS);
    expect(s.activateNextAtMs).toBe(T0 + 15 * MIN_MS);
  });

  it('never prepares before notBefore, and activates late rather than before the lead', () => {
    // 6m CA: the 5m mark is earlier than the 10m lead allows, and the CA expires at 6m.
    const tiny = { ...active, notAfterMs: T0 + 6 * MIN_MS };
    const s = authoritySchedule(tiny);
    expect(s.prepareNextAtMs).toBe(T0);
    expect(s.activateNextAtMs).toBe(T0 + 6 * MIN_MS);
  });

  it('prunes when the last thing signed expires, plus the grace', () => {
    expect(authoritySchedule(old(T0 + 21 * HOUR_MS)).pruneAtMs).toBe(T0 + 21 * HOUR_MS);
    expect(authoritySchedule(old(T0 + 21 * HOUR_MS), { pruneGraceMs: MIN_MS }).pruneAtMs).toBe(
      T0 + 21 * HOUR_MS + MIN_MS,
    );
    // Nothing verifies past the signer's own notAfter, so a later recorded expiry is capped.
    expect(authoritySchedule(old(T0 + 30 * HOUR_MS)).pruneAtMs).toBe(T0 + CA_TTL_MS);
  });
});

describe('shouldPrepareNext', () => {
  const mark = T0 + 12 * HOUR_MS;

  it('before the prepare mark: no; at and after it: yes', () => {
    expect(shouldPrepareNext(mark - 1, active)).toBe(false);
    expect(shouldPrepareNext(mark, active)).toBe(true);
    expect(shouldPrepareNext(mark + HOUR_MS, active)).toBe(true);
  });

  it('not when a usable successor is already prepared', () => {
    expect(shouldPrepareNext(mark + 1, active, preparedAt(mark))).toBe(false);
  });

  it('again when the prepared successor expired (server down for longer than a CA lifetime)', () => {
    const stale = preparedAt(mark);
    expect(shouldPrepareNext(stale.notAfterMs - 1, active, stale)).toBe(false);
    expect(shouldPrepareNext(stale.notAfterMs, active, stale)).toBe(true);
  });

  it('only for the active authority', () => {
    expect(shouldPrepareNext(mark, old())).toBe(false);
    expect(shouldPrepareNext(mark, { ...active, state: 'prepared' })).toBe(false);
  });
});

describe('shouldActivateNext', () => {
  const mark = T0 + 20 * HOUR_MS;

  it('before the activate mark: no; at and after it: yes (prepared long ago)', () => {
    const next = preparedAt(T0 + 12 * HOUR_MS);
    expect(shouldActivateNext(mark - 1, active, next)).toBe(false);
    expect(shouldActivateNext(mark, active, next)).toBe(true);
  });

  it('waits until the successor has been published for the lead', () => {
    const next = preparedAt(mark - 5 * MIN_MS);
    expect(authoritySchedule(active, {}, next).activateNextAtMs).toBe(mark + 5 * MIN_MS);
    expect(shouldActivateNext(mark, active, next)).toBe(false);
    expect(shouldActivateNext(mark + 5 * MIN_MS - 1, active, next)).toBe(false);
    expect(shouldActivateNext(mark + 5 * MIN_MS, active, next)).toBe(true);
  });

  it('honours a configured lead, or one derived from bundleRefreshMs', () => {
    const next = preparedAt(mark);
    expect(shouldActivateNext(mark + MIN_MS, active, next, { minPublishLeadMs: MIN_MS })).toBe(true);
    expect(shouldActivateNext(mark + 2 * MIN_MS - 1, active, next, { bundleRefreshMs: MIN_MS })).toBe(false);
    expect(shouldActivateNext(mark + 2 * MIN_MS, active, next, { bundleRefreshMs: MIN_MS })).toBe(true);
  });

  it('activates at the active expiry even if the successor was published too recently', () => {
    const next = preparedAt(active.notAfterMs - MIN_MS);
    expect(shouldActivateNext(active.notAfterMs - 1, active, next)).toBe(false);
    expect(shouldActivateNext(active.notAfterMs, active, next)).toBe(true);
  });

  it('treats an unknown publish time as too recent, up to the active expiry', () => {
    const next = preparedAt(undefined);
    expect(shouldActivateNext(mark + HOUR_MS, active, next)).toBe(false);
    expect(shouldActivateNext(active.notAfterMs, active, next)).toBe(true);
  });

  it('never activates an expired successor, nor one in the wrong state', () => {
    const next = preparedAt(T0 + 12 * HOUR_MS);
    expect(shouldActivateNext(next.notAfterMs, active, next)).toBe(false);
    expect(shouldActivateNext(mark, active, { ...next, state: 'old' })).toBe(false);
    expect(shouldActivateNext(mark, old(), next)).toBe(false);
  });
});

describe('shouldPrune', () => {
  it('keeps an old authority while anything it signed is valid, then prunes', () => {
    const lastMs = T0 + 21 * HOUR_MS;
    expect(shouldPrune(lastMs - 1, old(lastMs))).toBe(false);
    expect(shouldPrune(lastMs, old(lastMs))).toBe(true);
  });

  it('keeps an old authority with unknown signing history until its own expiry', () => {
    expect(shouldPrune(active.notAfterMs - 1, old())).toBe(false);
    expect(shouldPrune(active.notAfterMs, old())).toBe(true);
  });

  it('keeps JWT keys for the validators leeway past the last token exp', () => {
    const lastExpMs = T0 + 20 * HOUR_MS + 5 * MIN_MS;
    const jwt: RotationOptions = { pruneGraceMs: JWT_PRUNE_GRACE_MS };
    expect(shouldPrune(lastExpMs + JWT_PRUNE_GRACE_MS - 1, old(lastExpMs), jwt)).toBe(false);
    expect(shouldPrune(lastExpMs + JWT_PRUNE_GRACE_MS, old(lastExpMs), jwt)).toBe(true);
  });

  it('never prunes the active or a prepared authority, however late', () => {
    expect(shouldPrune(T0 + 100 * HOUR_MS, active)).toBe(false);
    expect(shouldPrune(T0 + 100 * HOUR_MS, preparedAt(T0))).toBe(false);
  });
});

describe('restart from the journal in each state', () => {
  // What a restarted owner does: ask every decision of the journaled authorities at the new `now`.
  function decide(nowMs: number, journal: readonly AuthorityTimes[]) {
    const current = journal.find((a) => a.state === 'active')!;
    const next = journal.find((a) => a.state === 'prepared');
    return {
      prepare: shouldPrepareNext(nowMs, current, next),
      activate: next !== undefined && shouldActivateNext(nowMs, current, next),
      prune: journal.filter((a) => shouldPrune(nowMs, a)).length,
    };
  }

  it('active only, before the prepare mark: nothing to do', () => {
    expect(decide(T0 + 11 * HOUR_MS, [active])).toEqual({ prepare: false, activate: false, prune: 0 });
  });

  it('active only, restarted past the prepare mark: prepare', () => {
    expect(decide(T0 + 13 * HOUR_MS, [active])).toEqual({ prepare: true, activate: false, prune: 0 });
  });

  it('active only, down across the activate mark: prepare now, activate only after the lead', () => {
    const nowMs = T0 + 21 * HOUR_MS;
    expect(decide(nowMs, [active])).toEqual({ prepare: true, activate: false, prune: 0 });
    const journal = [active, preparedAt(nowMs)];
    expect(decide(nowMs + LEAD_MS - 1, journal).activate).toBe(false);
    expect(decide(nowMs + LEAD_MS, journal).activate).toBe(true);
  });

  it('active and a successor published long enough ago, past the mark: activate', () => {
    const journal = [active, preparedAt(T0 + 12 * HOUR_MS)];
    expect(decide(T0 + 20 * HOUR_MS + 1, journal)).toEqual({ prepare: false, activate: true, prune: 0 });
  });

  it('active and a successor published just before the crash: wait until the lead passes', () => {
    const published = T0 + 20 * HOUR_MS - MIN_MS;
    const journal = [active, preparedAt(published)];
    expect(decide(T0 + 20 * HOUR_MS + MIN_MS, journal).activate).toBe(false);
    expect(decide(published + LEAD_MS, journal).activate).toBe(true);
  });

  it('active expired during the outage with a barely published successor: activate anyway', () => {
    const journal = [active, preparedAt(active.notAfterMs - MIN_MS)];
    expect(decide(active.notAfterMs + 1, journal)).toEqual({ prepare: false, activate: true, prune: 0 });
  });

  it('active and successor both expired during the outage: prepare a fresh one, activate neither', () => {
    const journal = [active, preparedAt(T0 + 12 * HOUR_MS)];
    expect(decide(T0 + 40 * HOUR_MS, journal)).toEqual({ prepare: true, activate: false, prune: 0 });
  });

  it('old authority: kept while its last SVID lives, pruned after', () => {
    const newActive: AuthorityTimes = { ...preparedAt(T0 + 12 * HOUR_MS), state: 'active' };
    const journal = [newActive, old(T0 + 21 * HOUR_MS)];
    expect(decide(T0 + 21 * HOUR_MS - 1, journal).prune).toBe(0);
    expect(decide(T0 + 21 * HOUR_MS, journal).prune).toBe(1);
  });
});

describe('options', () => {
  it('defaults to 1/2, 5/6, a 10-minute lead and no prune grace', () => {
    expect(resolveRotationOptions()).toEqual({
      prepareAtFraction: 1 / 2,
      activateAtFraction: 5 / 6,
      bundleRefreshMs: 5 * MIN_MS,
      minPublishLeadMs: LEAD_MS,
      pruneGraceMs: 0,
    });
  });

  it.each<[string, RotationOptions]>([
    ['prepareAtFraction', { prepareAtFraction: 0 }],
    ['prepareAtFraction', { prepareAtFraction: 1 }],
    ['activateAtFraction', { activateAtFraction: 0.4 }],
    ['activateAtFraction', { activateAtFraction: 1 }],
    ['bundleRefreshMs', { bundleRefreshMs: 0 }],
    ['minPublishLeadMs', { minPublishLeadMs: -1 }],
    ['minPublishLeadMs', { minPublishLeadMs: Number.POSITIVE_INFINITY }],
    ['pruneGraceMs', { pruneGraceMs: Number.NaN }],
  ])('refuses a bad %s with ERR_CONFIG_INVALID naming it', (field, options) => {
    let err: unknown;
    try {
      authoritySchedule(active, options);
    } catch (e) {
      err = e;
    }
    expect(isSigilError(err, 'ERR_CONFIG_INVALID')).toBe(true);
    expect((err as { field: string }).field).toBe(field);
    expect((err as Error).message).toMatch(new RegExp(`^rotation: ${field} must be .*\\(got `));
  });
});

describe('a rotation loop driven by the Scheduler on a ManualClock', () => {
  // A miniature owner: the real one lives in server/ca; this proves the decisions compose over
  // two full rotations when it only ever wakes at the times the schedule returns.
  it('prepares, activates and prunes at the scheduled times', async () => {
    const clock = new ManualClock(T0);
    const events: string[] = [];
    let journal: AuthorityTimes[] = [active];
    const scheduler = new Scheduler(clock, { onError: (err) => events.push(`error ${String(err)}`) });
    const at = (ms: number) => `+${(ms - T0) / MIN_MS}m`;

    const tick = () => {
      const now = clock.nowMs();
      let current = journal.find((a) => a.state === 'active')!;
      let next = journal.find((a) => a.state === 'prepared');
      if (shouldPrepareNext(now, current, next)) {
        next = { notBeforeMs: now, notAfterMs: now + CA_TTL_MS, state: 'prepared', preparedAtMs: now };
        journal = [...journal, next];
        events.push(`prepare ${at(now)}`);
      }
      if (next && shouldActivateNext(now, current, next)) {
        // Everything the outgoing CA signed is capped by its notAfter; say its last SVID lives 1h.
        const lastSignedExpiresAtMs = Math.min(now + HOUR_MS, current.notAfterMs);
        journal = journal.map((a) =>
          a === current
            ? { ...a, state: 'old', lastSignedExpiresAtMs }
            : a === next
              ? { ...a, state: 'active' }
              : a,
        );
        events.push(`activate ${at(now)}`);
      }
      const kept = journal.filter((a) => !shouldPrune(now, a));
      if (kept.length !== journal.length) events.push(`prune ${at(now)}`);
      journal = kept;

      current = journal.find((a) => a.state === 'active')!;
      next = journal.find((a) => a.state === 'prepared');
      const s = authoritySchedule(current, {}, next);
      const wakes = [next ? s.activateNextAtMs : s.prepareNextAtMs];
      for (const a of journal) if (a.state === 'old') wakes.push(authoritySchedule(a).pruneAtMs);
      scheduler.schedule('rotate', Math.min(...wakes), tick);
    };

    tick();
    await clock.advance(2 * CA_TTL_MS);
    await scheduler.close();
    expect(events).toEqual([
      'prepare +720m',
      'activate +1200m',
      'prune +1260m',
      // The successor started at +720m, so its own marks fall 720m later, and so on.
      'prepare +1440m',
      'activate +1920m',
      'prune +1980m',
      'prepare +2160m',
      'activate +2640m',
      'prune +2700m',
      'prepare +2880m',
    ]);
  });
});
