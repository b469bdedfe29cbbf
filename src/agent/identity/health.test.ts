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
  unexpiredSvids: 3,
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
    ['no entries, but the server said so', { entries: 0, unexpiredSvids: 0 }, 'ok', null],
    [
      'no entries after a sync, server gone since: the node has nothing to serve by design',
      { entries: 0, unexpiredSvids: 0, serverConnected: false },
      'degraded',
      /server unreachable/,
    ],
    [
      'entries but every SVID expired, server not connected: nothing can mint them',
      { unexpiredSvids: 0, serverConnected: false, serverProblem: 'No connection established' },
      'unhealthy',
      /nothing to serve: 3 entries but no unexpired X\.509-SVID, and the server is not connected to mint them/,
    ],
    [
      'entries restored from disk, every SVID expired, never synced',
      { unexpiredSvids: 0, serverConnected: false, synced: false },
      'unhealthy',
      /nothing to serve: 3 entries but no unexpired X\.509-SVID/,
    ],
    [
      'entries restored from disk with valid SVIDs, never synced: degraded, serving',
      { unexpiredSvids: 2, serverConnected: false, synced: false },
      'degraded',
      /server unreachable; serving cached SVIDs/,
    ],
    ['entries without SVIDs while connected: the server is minting them', { unexpiredSvids: 0 }, 'ok', null],
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
