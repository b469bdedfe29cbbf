// Journal transitions as pure functions: each takes a list of authority records and returns the
// next one, so the CA can build the next journal as a value, save it, and only then adopt it (a
// failed save leaves memory equal to the store). Nothing here creates keys, reads a clock or saves.
import {
  type AuthorityTimes,
  authoritySchedule,
  type RotationOptions,
  resolveRotationOptions,
  shouldActivateNext,
  shouldPrepareNext,
  shouldPrune,
} from '../../rotation/index.js';
import { type AuthorityKind, type AuthorityRecord, type CaJournal, inState } from './journal.js';

/** What rotation must do to one kind's list now; `create` means a fresh authority is needed first. */
export type RotationDecision =
  | { readonly step: 'none' }
  | { readonly step: 'replace-active'; readonly why: string; readonly reuse?: AuthorityRecord }
  | { readonly step: 'prepare' }
  | { readonly step: 'activate'; readonly id: string };

/** The step due for `list` at `nowMs` (pruning is separate: see prunable). */
export function decideRotation(
  list: readonly AuthorityRecord[],
  nowMs: number,
  opts: RotationOptions,
): RotationDecision {
  const active = inState(list, 'active');
  const prepared = inState(list, 'prepared');
  if (!active || active.notAfterMs <= nowMs) {
    // No usable signer (first start, or down past the CA's expiry): sign with a fresh one now.
    const why = active ? `active authority ${active.id} had expired` : 'no active authority';
    return prepared && prepared.notAfterMs > nowMs
      ? { step: 'replace-active', why, reuse: prepared }
      : { step: 'replace-active', why };
  }
  if (shouldPrepareNext(nowMs, authorityTimes(active), prepared && authorityTimes(prepared), opts)) {
    return { step: 'prepare' };
  }
  if (prepared && shouldActivateNext(nowMs, authorityTimes(active), authorityTimes(prepared), opts)) {
    return { step: 'activate', id: prepared.id };
  }
  return { step: 'none' };
}

/** Old, untainted authorities whose last signed credential has expired (plus grace). */
export function prunable(
  list: readonly AuthorityRecord[],
  nowMs: number,
  opts: RotationOptions,
): AuthorityRecord[] {
  return list.filter((a) => !a.tainted && shouldPrune(nowMs, authorityTimes(a), opts));
}

/** `record` as the prepared authority, replacing any prepared one. */
export function withPrepared(list: readonly AuthorityRecord[], record: AuthorityRecord): AuthorityRecord[] {
  return [...list.filter((a) => a.state !== 'prepared'), record];
}

/**
 * `id` active from `nowMs`, the current active one old. `lastSignedExpiresAtMs(id)` gives the latest
 * expiry the retiring authority signed when it was tracked exactly, else undefined: anything up to
 * its own notAfter may then exist.
 */
export function withActivated(
  list: readonly AuthorityRecord[],
  id: string,
  nowMs: number,
  lastSignedExpiresAtMs: (id: string) => number | undefined,
): AuthorityRecord[] {
  return list.map((a): AuthorityRecord => {
    if (a.id === id) {
      return { ...a, state: 'active', activatedAtMs: nowMs, preparedAtMs: a.preparedAtMs ?? nowMs };
    }
    if (a.state !== 'active') return a;
    return { ...a, state: 'old', lastSignedExpiresAtMs: lastSignedExpiresAtMs(a.id) ?? a.notAfterMs };
  });
}

export function withTainted(list: readonly AuthorityRecord[], id: string): AuthorityRecord[] {
  return list.map((a) => (a.id === id ? { ...a, tainted: true } : a));
}

export function without(list: readonly AuthorityRecord[], ids: readonly string[]): AuthorityRecord[] {
  return list.filter((a) => !ids.includes(a.id));
}

/**
 * The earliest time rotation has something to do for `list`: the successor's prepare or activate
 * mark, the active authority's expiry, an old one's prune time. Infinity when nothing is scheduled.
 */
export function nextStepAtMs(list: readonly AuthorityRecord[], opts: RotationOptions): number {
  let nextMs = Number.POSITIVE_INFINITY;
  const active = inState(list, 'active');
  const prepared = inState(list, 'prepared');
  if (active) {
    const schedule = authoritySchedule(authorityTimes(active), opts, prepared && authorityTimes(prepared));
    nextMs = Math.min(
      nextMs,
      prepared ? schedule.activateNextAtMs : schedule.prepareNextAtMs,
      active.notAfterMs,
    );
  }
  for (const old of list.filter((a) => a.state === 'old' && !a.tainted)) {
    nextMs = Math.min(nextMs, authoritySchedule(authorityTimes(old), opts).pruneAtMs);
  }
  return nextMs;
}

/** When the prepared authority may be activated without risk: published for the publish lead. */
export function safeActivationAtMs(prepared: AuthorityRecord, opts: RotationOptions): number {
  return (prepared.preparedAtMs ?? prepared.createdAtMs) + resolveRotationOptions(opts).minPublishLeadMs;
}

export function authorityTimes(a: AuthorityRecord): AuthorityTimes {
  return {
    notBeforeMs: a.createdAtMs,
    notAfterMs: a.notAfterMs,
    state: a.state,
    ...(a.preparedAtMs !== undefined ? { preparedAtMs: a.preparedAtMs } : {}),
    ...(a.activatedAtMs !== undefined ? { activatedAtMs: a.activatedAtMs } : {}),
    ...(a.lastSignedExpiresAtMs !== undefined ? { lastSignedExpiresAtMs: a.lastSignedExpiresAtMs } : {}),
  };
}

/** One kind's decision for this rotation check, with the authority made for it when it needs one. */
export interface KindStep {
  readonly kind: AuthorityKind;
  readonly decision: RotationDecision;
  readonly created?: AuthorityRecord;
}

export interface RotationPlan {
  readonly next: CaJournal;
  /** One line per changed kind, for the log. */
  readonly changes: readonly { readonly kind: AuthorityKind; readonly change: string }[];
  /** Authorities this plan activates: tracked exactly from their activation on. */
  readonly activated: readonly string[];
}

/** The journal after applying each kind's step and pruning what may go, at `nowMs`. */
export function planRotation(
  journal: CaJournal,
  steps: readonly KindStep[],
  nowMs: number,
  optsFor: (kind: AuthorityKind) => RotationOptions,
  lastSignedExpiresAtMs: (id: string) => number | undefined,
): RotationPlan {
  let next = journal;
  const changes: { kind: AuthorityKind; change: string }[] = [];
  const activated: string[] = [];
  for (const { kind, decision, created } of steps) {
    let list: AuthorityRecord[] = [...journal[kind]];
    const why: string[] = [];
    if (decision.step === 'replace-active') {
      const record = decision.reuse ?? created!;
      list = withActivated(withPrepared(list, record), record.id, nowMs, lastSignedExpiresAtMs);
      activated.push(record.id);
      why.push(decision.why);
    } else if (decision.step === 'prepare') {
      list = withPrepared(list, created!);
      why.push(`prepared successor ${created!.id}`);
    } else if (decision.step === 'activate') {
      list = withActivated(list, decision.id, nowMs, lastSignedExpiresAtMs);
      activated.push(decision.id);
      why.push(`activated ${decision.id}`);
    }
    const pruned = prunable(list, nowMs, optsFor(kind)).map((a) => a.id);
    if (pruned.length > 0) {
      list = without(list, pruned);
      why.push(`pruned ${pruned.join(', ')}`);
    }
    if (why.length > 0) {
      next = { ...next, [kind]: list };
      changes.push({ kind, change: why.join('; ') });
    }
  }
  return { next, changes, activated };
}

/** Whether `list` has no active authority, or one past the mark where its successor should sign. */
export function isOverdue(list: readonly AuthorityRecord[], nowMs: number, opts: RotationOptions): boolean {
  const active = inState(list, 'active');
  if (!active) return true;
  const prepared = inState(list, 'prepared');
  return (
    nowMs >=
    authoritySchedule(authorityTimes(active), opts, prepared && authorityTimes(prepared)).activateNextAtMs
  );
}
