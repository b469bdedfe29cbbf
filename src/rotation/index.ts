// Rotation timing shared by the server's CA and the agent's SVID cache: pure functions that return
// times and decisions, plus a Scheduler that wakes the owner at those times on an injected Clock.

export type { AuthoritySchedule, AuthorityTimes } from './authority-schedule.js';
export {
  authoritySchedule,
  shouldActivateNext,
  shouldPrepareNext,
  shouldPrune,
} from './authority-schedule.js';
export type { ResolvedRotationOptions, RotationOptions } from './rotation-options.js';
export {
  DEFAULT_ACTIVATE_AT_FRACTION,
  DEFAULT_PREPARE_AT_FRACTION,
  JWT_PRUNE_GRACE_MS,
  resolveRotationOptions,
} from './rotation-options.js';
export type { ScheduledAction, SchedulerOptions } from './scheduler.js';
export { Scheduler } from './scheduler.js';
export type { RenewalOptions, SvidValidity } from './svid-renewal.js';
export { renewAtMs, shouldRenew } from './svid-renewal.js';
export type { RotationConfig } from './ttl-limits.js';
export { maxSvidTtlMs, rotationWarnings } from './ttl-limits.js';
