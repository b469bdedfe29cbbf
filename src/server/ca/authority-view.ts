// The operator's view of one signing authority (`localauthority show`): its state, the next step
// rotation takes and when, when a prepared one is safe to activate, and for an old X.509 authority
// what still chains to it, so that an operator knows when a revoke locks nobody out.
import { authoritySchedule, type RotationOptions } from '../../rotation/index.js';
import type { AuthorityDependents, AuthorityView } from '../api/admin/deps.js';
import { type AuthorityRecord, inState } from './journal.js';
import { safeActivationAtMs, authorityTimes as times } from './journal-steps.js';

export function authorityView(
  a: AuthorityRecord,
  list: readonly AuthorityRecord[],
  opts: RotationOptions,
  dependents: AuthorityDependents | null = null,
): AuthorityView {
  let nextEvent: string | null = null;
  let nextEventAtMs: number | null = null;
  const active = inState(list, 'active');
  const prepared = inState(list, 'prepared');
  if (a.state === 'prepared') {
    if (active) {
      [nextEvent, nextEventAtMs] = [
        'activate',
        authoritySchedule(times(active), opts, times(a)).activateNextAtMs,
      ];
    }
  } else if (a.state === 'active') {
    [nextEvent, nextEventAtMs] = prepared
      ? ['retire', authoritySchedule(times(a), opts, times(prepared)).activateNextAtMs]
      : ['prepare successor', authoritySchedule(times(a), opts).prepareNextAtMs];
  } else if (!a.tainted) {
    [nextEvent, nextEventAtMs] = ['prune', authoritySchedule(times(a), opts).pruneAtMs];
  }
  return {
    id: a.id,
    state: a.state,
    tainted: a.tainted ?? false,
    notAfterMs: a.notAfterMs,
    createdAtMs: a.createdAtMs,
    publishedAtMs: a.preparedAtMs ?? null,
    activatedAtMs: a.activatedAtMs ?? null,
    nextEvent,
    nextEventAtMs,
    safeToActivateAtMs: a.state === 'prepared' ? safeActivationAtMs(a, opts) : null,
    dependents,
  };
}
