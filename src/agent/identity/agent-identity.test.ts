// The agent's own SVID lifecycle on a ManualClock with a fake server connection: renewal at the
// jittered point drawn once, backoff after failures, renewal on taint, re-attestation when refused.
import { status } from '@grpc/grpc-js';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTrustBundle } from '../../spiffe/bundle.js';
import { ManualClock } from '../../spiffe/clock.js';
import { SigilError } from '../../spiffe/errors.js';
import { generateKey } from '../../spiffe/keys.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import { EXAMPLE, makeCa, mintLeaf, NOW, type TestCa } from '../../spiffe/x509-svid.test-support.js';
import type { AgentState } from '../agent-state.js';
import { AgentIdentity, type AttestationEvidence } from './agent-identity.js';

const MINUTE = 60_000;
const LIFE = 60 * MINUTE;
let oldCa: TestCa;
let newCa: TestCa;

beforeAll(async () => {
  oldCa = await makeCa('ec-p256');
  newCa = await makeCa('ec-p256');
});

function leaf(ca: TestCa, notBeforeMs: number): Buffer {
  return mintLeaf(ca, { notBeforeMs, notAfterMs: notBeforeMs + LIFE });
}

function stateOf(chain: Buffer[], overrides: Partial<AgentState> = {}): AgentState {
  return {
    spiffeId: describeCertificate(chain[0]!).spiffeId!,
    chain,
    key: generateKey('ec-p256'),
    bundle: createTrustBundle({ trustDomain: EXAMPLE, x509Authorities: [oldCa.der, newCa.der] }),
    canReattest: false,
    expiresAtMs: describeCertificate(chain[0]!).notAfterMs,
    joinTokenSha256: 'a'.repeat(64),
    ...overrides,
  };
}

function setup(options: { evidence?: AttestationEvidence | null; initial?: AgentState } = {}) {
  const clock = new ManualClock(NOW);
  const renewals: number[] = [];
  const saved: AgentState[] = [];
  let reconnects = 0;
  let next: () => Promise<{ svidChain: Buffer[] }> = async () => ({
    svidChain: [leaf(newCa, clock.nowMs())],
  });
  const identity = new AgentIdentity({
    initial: options.initial ?? stateOf([leaf(oldCa, NOW)]),
    receivedAtMs: NOW,
    connection: {
      setBundlePem: () => {},
      setIdentity: () => {},
      renewAgentSvid: () => {
        renewals.push(clock.nowMs());
        return next();
      },
      reconnect: () => {
        reconnects++;
      },
    },
    evidence: options.evidence ?? null,
    save: async (state) => {
      saved.push(state);
    },
    clock,
    // Centred jitter: the renewal point is exactly half the life.
    random: () => 0.5,
    logger: pino({ level: process.env.TEST_LOG ?? 'silent' }),
  });
  return {
    clock,
    identity,
    renewals,
    saved,
    reconnects: () => reconnects,
    failWith: (err: unknown) => {
      next = async () => {
        throw err;
      };
    },
    succeed: () => {
      next = async () => ({ svidChain: [leaf(newCa, clock.nowMs())] });
    },
  };
}

const unavailable = Object.assign(new Error('14 UNAVAILABLE: No connection established'), {
  code: status.UNAVAILABLE,
  details: 'No connection established',
});
const denied = Object.assign(new Error('7 PERMISSION_DENIED: agent is not attested (evicted?)'), {
  code: status.PERMISSION_DENIED,
  details: 'agent is not attested (evicted?)',
});

describe('AgentIdentity', () => {
  it('renews at the jittered half-life point, through the rotation scheduler', async () => {
    const t = setup();
    expect(t.identity.health().renewAtMs).toBe(NOW + LIFE / 2);
    await t.clock.advance(LIFE / 2 - 1);
    expect(t.renewals).toEqual([]);
    await t.clock.advance(1);
    expect(t.renewals).toEqual([NOW + LIFE / 2]);
    expect(t.saved).toHaveLength(1);
    expect(t.reconnects()).toBe(1);
    // The next point counts from when the new SVID arrived.
    expect(t.identity.health().renewAtMs).toBe(NOW + LIFE / 2 + LIFE / 2);
    await t.identity.close();
  });

  it('retries a failed renewal with doubling backoff, not a fixed 5 s, and keeps the error for health', async () => {
    const t = setup();
    t.failWith(unavailable);
    await t.clock.advance(LIFE / 2);
    expect(t.renewals).toHaveLength(1);
    // random = 0.5: each delay is 3/4 of its ceiling: 0.75 s, 1.5 s, 3 s, 6 s.
    await t.clock.advance(60_000);
    const gaps = t.renewals.slice(1).map((at, i) => at - t.renewals[i]!);
    expect(gaps.slice(0, 4)).toEqual([750, 1_500, 3_000, 6_000]);
    expect(t.identity.health().lastRenewalError).toBe('No connection established');
    t.succeed();
    await t.clock.advance(10 * MINUTE);
    expect(t.identity.health().lastRenewalError).toBeNull();
    await t.identity.close();
  });

  it('renews within seconds when the authority that signed its SVID is tainted', async () => {
    const t = setup();
    const skiOf = (der: Buffer) => describeCertificate(der).subjectKeyIdHex!;
    // Tainting another authority changes nothing.
    t.identity.noteTainted(new Set([skiOf(newCa.der)]), [oldCa.der, newCa.der]);
    await t.clock.advance(10_000);
    expect(t.renewals).toEqual([]);
    t.identity.noteTainted(new Set([skiOf(oldCa.der)]), [oldCa.der, newCa.der]);
    await t.clock.advance(5_000);
    expect(t.renewals).toHaveLength(1);
    expect(t.renewals[0]! - NOW).toBeLessThanOrEqual(15_000);
    await t.identity.close();
  });

  it('attests again with a join token it has not used when the server refuses it', async () => {
    let attested = 0;
    const t = setup({
      evidence: {
        joinTokenSha256: 'b'.repeat(64),
        attest: async () => {
          attested++;
          return stateOf([leaf(newCa, NOW)], { joinTokenSha256: null });
        },
      },
    });
    expect(await t.identity.onRefused('agent is not attested (evicted?)')).toBe(true);
    expect(attested).toBe(1);
    expect(t.saved.at(-1)!.joinTokenSha256).toBe('b'.repeat(64));
    expect(t.identity.health().refusedReason).toBeNull();
    // Refused again: the same token cannot work twice.
    expect(await t.identity.onRefused('banned')).toBe(false);
    expect(attested).toBe(1);
    expect(t.identity.health().refusedReason).toBe('banned');
    await t.identity.close();
  });

  it('does not spend the token it was attested with again, and reports the refusal', async () => {
    let attested = 0;
    const t = setup({
      evidence: {
        joinTokenSha256: 'a'.repeat(64),
        attest: async () => {
          attested++;
          throw new SigilError('ERR_PERMISSION_DENIED', 'token used');
        },
      },
    });
    t.failWith(denied);
    await t.clock.advance(LIFE / 2);
    expect(attested).toBe(0);
    expect(t.identity.health().refusedReason).toBe('agent is not attested (evicted?)');
    await t.identity.close();
  });

  it('attests again when its SVID expired and the attestor may (x509pop), instead of swallowing a failure', async () => {
    const attempts: number[] = [];
    const t = setup({
      initial: stateOf([leaf(oldCa, NOW)], { canReattest: true, joinTokenSha256: null }),
      evidence: {
        joinTokenSha256: null,
        attest: async () => {
          attempts.push(0);
          if (attempts.length === 1) throw new SigilError('ERR_UNAVAILABLE', 'cannot attest: server down');
          return stateOf([leaf(newCa, NOW + LIFE)], { canReattest: true, joinTokenSha256: null });
        },
      },
    });
    t.failWith(unavailable);
    // Past expiry the retries back off up to 5 minutes.
    await t.clock.advance(LIFE + 10 * MINUTE);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(t.identity.state.chain[0]!.equals(t.saved.at(-1)!.chain[0]!)).toBe(true);
    expect(t.identity.health().lastRenewalError).toBeNull();
    await t.identity.close();
  });
});
