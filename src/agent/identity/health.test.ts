import { describe, expect, it } from 'vitest';
import { type AgentHealthFacts, assessAgentHealth } from './health.js';

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;
const healthy: AgentHealthFacts = {
  nowMs: T0 + 10 * 60_000,
  svid: { notBeforeMs: T0, notAfterMs: T0 + HOUR, renewAtMs: T0 + HOUR / 2 },
  lastRenewalError: null,
  refusedReason: null,
  serverConnected: true,
  serverProblem: null,
  synced: true,
  entries: 3,
};

describe('assessAgentHealth', () => {
  it.each<[string, Partial<AgentHealthFacts>, string, RegExp | null]>([
    ['connected, SVID fresh', {}, 'ok', null],
    [
      'server unreachable while SVIDs are valid: degraded, still serving',
      { serverConnected: false, serverProblem: 'No connection established' },
      'degraded',
      /server unreachable; serving cached SVIDs \(No connection established\)/,
    ],
    [
      'the server refuses the agent',
      { serverConnected: false, refusedReason: 'agent is not attested (evicted?)' },
      'unhealthy',
      /the server refuses this agent \(agent is not attested \(evicted\?\)\)/,
    ],
    [
      'nothing to serve: no entries and never synced',
      { entries: 0, synced: false, serverConnected: false },
      'unhealthy',
      /nothing to serve/,
    ],
    ['no entries, but the server said so', { entries: 0 }, 'ok', null],
    [
      'renewal overdue by more than a fifth of the life',
      { nowMs: T0 + 0.71 * HOUR, lastRenewalError: 'No connection established' },
      'unhealthy',
      /was due for renewal .*last attempt failed: No connection established/,
    ],
    [
      'renewal failing but not yet overdue: a warning',
      { nowMs: T0 + 0.6 * HOUR, lastRenewalError: 'No connection established' },
      'degraded',
      /renewing the agent SVID failed \(retrying\)/,
    ],
    ['SVID expired', { nowMs: T0 + HOUR }, 'unhealthy', /the agent SVID expired at/],
  ])('%s', (_name, change, status, text) => {
    const health = assessAgentHealth({ ...healthy, ...change });
    expect(health.status).toBe(status);
    if (text) expect([...health.reasons, ...health.warnings].join('\n')).toMatch(text);
    else expect([...health.reasons, ...health.warnings]).toEqual([]);
  });
});
