import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { OutlierDetector, type OutlierOptions, type TryOutcome } from './outlier.js';

interface Ep {
  readonly name: string;
}

const DEFAULTS: OutlierOptions = {
  consecutiveFailures: 5,
  failureRate: 0.5,
  minRequests: 20,
  windowMs: 30_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectedShare: 0.5,
};

function setup(overrides: Partial<OutlierOptions> = {}, count = 4) {
  const clock = new ManualClock();
  const log: string[] = [];
  const start = clock.nowMs();
  const at = (ms: number) => `+${(ms - start) / 1_000}s`;
  const detector = new OutlierDetector<Ep>({ ...DEFAULTS, ...overrides }, clock, {
    onEject: (e, untilMs, reason) => log.push(`eject ${e.name} ${reason} until ${at(untilMs)}`),
    onReturn: (e) => log.push(`return ${e.name}`),
    onProbeFailed: (e, untilMs) => log.push(`probe-failed ${e.name} until ${at(untilMs)}`),
  });
  const eps = Array.from({ length: count }, (_, i) => ({ name: String.fromCharCode(97 + i) }));
  detector.setEndpoints(eps);
  const results = (e: Ep, ...outcomes: TryOutcome[]) => {
    for (const outcome of outcomes) {
      detector.onPick(e);
      detector.onResult(e, outcome);
    }
  };
  const fail = (e: Ep, n: number) => results(e, ...Array<TryOutcome>(n).fill('failure'));
  return { clock, log, detector, eps, results, fail };
}

describe('OutlierDetector: consecutive failures', () => {
  it('ejects after N failures in a row, for base ejection', () => {
    const { detector, eps, fail, log } = setup();
    const [a] = eps;
    fail(a!, 4);
    expect(detector.isSelectable(a!)).toBe(true);
    fail(a!, 1);
    expect(log).toEqual(['eject a consecutive until +30s']);
    expect(detector.isSelectable(a!)).toBe(false);
    expect(detector.stateOf(a!)).toEqual({
      state: 'ejected',
      ejectedUntilMs: 1_700_000_030_000,
      ejections: 1,
    });
    expect(detector.ejectedCount).toBe(1);
  });

  it('restarts the count on a success', () => {
    const { eps, results, log } = setup();
    results(
      eps[0]!,
      'failure',
      'failure',
      'failure',
      'failure',
      'success',
      'failure',
      'failure',
      'failure',
      'failure',
    );
    expect(log).toEqual([]);
  });

  it('treats overload as neither failure nor success', () => {
    const { eps, results, fail, log } = setup();
    fail(eps[0]!, 200);
    // 200 failures eject once; then overloads on another endpoint never do...
    results(eps[1]!, ...Array<TryOutcome>(200).fill('overload'));
    // ...and do not reset a failure streak either.
    results(eps[2]!, 'failure', 'failure', 'failure', 'failure', 'overload', 'overload', 'failure');
    expect(log).toEqual(['eject a consecutive until +30s', 'eject c consecutive until +30s']);
  });

  it('is off with consecutiveFailures 0', () => {
    const { eps, fail, log } = setup({ consecutiveFailures: 0, failureRate: 0 });
    fail(eps[0]!, 1_000);
    expect(log).toEqual([]);
  });
});

describe('OutlierDetector: failure rate', () => {
  const RATE_ONLY = { consecutiveFailures: 0, failureRate: 0.5, minRequests: 20 };

  it('ejects when failures exceed the rate, once min requests are seen', () => {
    const { eps, results, log } = setup(RATE_ONLY);
    // Two failures in three: 2/3 > 0.5. The 20th try is the first that may decide.
    for (let i = 0; i < 6; i++) results(eps[0]!, 'success', 'failure', 'failure');
    expect(log).toEqual([]);
    results(eps[0]!, 'success', 'failure');
    expect(log).toEqual(['eject a rate until +30s']);
  });

  it('does not eject at exactly the rate', () => {
    const { eps, results, log } = setup(RATE_ONLY);
    for (let i = 0; i < 500; i++) results(eps[0]!, 'success', 'failure');
    expect(log).toEqual([]);
  });

  it('forgets tries once they leave the window', async () => {
    const { clock, eps, fail, results, log } = setup(RATE_ONLY);
    fail(eps[0]!, 19);
    await clock.advance(30_000);
    fail(eps[0]!, 1);
    expect(log).toEqual([]);
    // 19 more failures reach 20 in the new window.
    results(eps[0]!, ...Array<TryOutcome>(19).fill('failure'));
    expect(log).toEqual(['eject a rate until +60s']);
  });

  it('starts a returned endpoint with an empty window', async () => {
    const { clock, detector, eps, fail, results, log } = setup(RATE_ONLY);
    fail(eps[0]!, 20);
    await clock.advance(30_000);
    results(eps[0]!, 'success');
    expect(detector.stateOf(eps[0]!).state).toBe('healthy');
    // The 20 failures before the ejection do not count again: one more failure is 1 try of 20.
    fail(eps[0]!, 1);
    expect(log).toEqual(['eject a rate until +30s', 'return a']);
  });

  it('counts overload answers for nothing, not even as tries', () => {
    const { eps, results, log } = setup({ ...RATE_ONLY, minRequests: 4 });
    results(eps[0]!, 'overload', 'overload', 'overload', 'overload', 'failure', 'failure', 'failure');
    expect(log).toEqual([]);
    results(eps[0]!, 'failure');
    expect(log).toEqual(['eject a rate until +30s']);
  });
});

describe('OutlierDetector: probes and ejection lengths', () => {
  it('sends one probe when the ejection is over, and returns the endpoint on its success', async () => {
    const { clock, detector, eps, fail, log } = setup();
    const a = eps[0]!;
    fail(a, 5);
    await clock.advance(29_999);
    expect(detector.isSelectable(a)).toBe(false);
    await clock.advance(1);
    expect(detector.isSelectable(a)).toBe(true);
    detector.onPick(a);
    expect(detector.stateOf(a).state).toBe('probing');
    // No second try while the probe is out.
    expect(detector.isSelectable(a)).toBe(false);
    detector.onResult(a, 'success');
    expect(detector.stateOf(a)).toEqual({ state: 'healthy', ejectedUntilMs: null, ejections: 1 });
    expect(detector.isSelectable(a)).toBe(true);
    expect(detector.ejectedCount).toBe(0);
    expect(log).toEqual(['eject a consecutive until +30s', 'return a']);
  });

  it('re-ejects at once on a failed probe, each time for longer, up to max', async () => {
    const { clock, detector, eps, fail, log } = setup({ maxEjectionMs: 100_000 });
    const a = eps[0]!;
    fail(a, 5);
    for (let i = 0; i < 4; i++) {
      await clock.advance(detector.stateOf(a).ejectedUntilMs! - clock.nowMs());
      detector.onPick(a);
      detector.onResult(a, 'failure');
    }
    expect(log).toEqual([
      'eject a consecutive until +30s',
      'probe-failed a until +90s',
      'probe-failed a until +180s',
      'probe-failed a until +280s',
      'probe-failed a until +380s',
    ]);
    expect(detector.stateOf(a).ejections).toBe(5);
    expect(detector.ejectedCount).toBe(1);
  });

  it('keeps the multiplier after a return and forgives it one base at a time', async () => {
    const { clock, detector, eps, fail, log } = setup();
    const a = eps[0]!;
    fail(a, 5);
    await clock.advance(30_000);
    detector.onPick(a);
    detector.onResult(a, 'failure');
    await clock.advance(60_000);
    detector.onPick(a);
    detector.onResult(a, 'success');
    // Back after two ejections (at +90s). Failing again at once: the third length.
    fail(a, 5);
    expect(log.at(-1)).toBe('eject a consecutive until +180s');
    await clock.advance(90_000);
    detector.onPick(a);
    detector.onResult(a, 'success');
    // Back at +180s after three. Healthy for two bases forgives two: the next is the second length.
    await clock.advance(60_000);
    expect(detector.stateOf(a).ejections).toBe(1);
    fail(a, 5);
    expect(log.at(-1)).toBe('eject a consecutive until +300s');
  });

  it('drops results of tries sent before the ejection', async () => {
    const { clock, detector, eps, fail, results, log } = setup();
    const a = eps[0]!;
    fail(a, 5);
    detector.onResult(a, 'failure');
    detector.onResult(a, 'success');
    await clock.advance(30_000);
    // Ejection over, not yet picked: still no effect.
    detector.onResult(a, 'success');
    expect(detector.stateOf(a).state).toBe('ejected');
    results(a, 'success');
    expect(log).toEqual(['eject a consecutive until +30s', 'return a']);
  });

  it('frees the probe slot when the probe is abandoned or answered with overload', async () => {
    const { clock, detector, eps, fail } = setup();
    const a = eps[0]!;
    fail(a, 5);
    await clock.advance(30_000);
    detector.onPick(a);
    detector.onAbandon(a);
    expect(detector.isSelectable(a)).toBe(true);
    detector.onPick(a);
    detector.onResult(a, 'overload');
    expect(detector.isSelectable(a)).toBe(true);
    expect(detector.stateOf(a).state).toBe('ejected');
    // Neither counted as a failed probe: the next length is unchanged.
    detector.onPick(a);
    detector.onResult(a, 'failure');
    expect(detector.stateOf(a).ejectedUntilMs).toBe(clock.nowMs() + 60_000);
  });

  it('lets another try probe when a probe stays unanswered for probeTimeoutMs', async () => {
    const { clock, detector, eps, fail } = setup({ probeTimeoutMs: 5_000 });
    const a = eps[0]!;
    fail(a, 5);
    await clock.advance(30_000);
    detector.onPick(a);
    await clock.advance(4_999);
    expect(detector.isSelectable(a)).toBe(false);
    await clock.advance(1);
    expect(detector.isSelectable(a)).toBe(true);
    detector.onPick(a);
    expect(detector.isSelectable(a)).toBe(false);
  });
});

describe('OutlierDetector: how many may be out', () => {
  it('never ejects more than floor(share * endpoints); the next failure ejects once there is room', async () => {
    const { clock, detector, eps, fail, log } = setup({ maxEjectedShare: 0.5 }, 5);
    const [a, b, c] = eps;
    fail(a!, 5);
    fail(b!, 5);
    fail(c!, 20);
    expect(detector.isSelectable(c!)).toBe(true);
    expect(detector.ejectedCount).toBe(2);
    await clock.advance(30_000);
    detector.onPick(a!);
    detector.onResult(a!, 'success');
    fail(c!, 1);
    expect(log).toEqual([
      'eject a consecutive until +30s',
      'eject b consecutive until +30s',
      'return a',
      'eject c consecutive until +60s',
    ]);
  });

  it.each([
    [0, 3, 0],
    [0.5, 1, 0],
    [0.3, 3, 0],
    [0.5, 3, 1],
    [1, 1, 1],
  ])(
    'ejects at most floor(share × endpoints) (share %d, %d endpoints: %d)',
    (maxEjectedShare, count, most) => {
      const { detector, eps, fail } = setup({ maxEjectedShare }, count);
      for (const e of eps) fail(e, 5);
      expect(detector.ejectedCount).toBe(most);
    },
  );
});

describe('OutlierDetector: the endpoint set', () => {
  it('keeps the state of endpoints that stay and drops that of those that leave', () => {
    const { detector, eps, fail } = setup();
    const [a, b, c, d] = eps;
    fail(a!, 5);
    fail(b!, 5);
    fail(c!, 3);
    detector.setEndpoints([a!, c!, d!]);
    expect(detector.stateOf(a!).state).toBe('ejected');
    expect(detector.ejectedCount).toBe(1);
    // c kept its streak of three.
    fail(c!, 2);
    expect(detector.stateOf(c!).state).toBe('healthy');
    expect(detector.ejectedCount).toBe(1);
    detector.setEndpoints([a!, b!, c!, d!]);
    // b comes back with no memory of its ejection; now 2 of 4 may be out, and c's streak ejects it.
    expect(detector.stateOf(b!)).toEqual({ state: 'healthy', ejectedUntilMs: null, ejections: 0 });
    fail(c!, 1);
    expect(detector.ejectedCount).toBe(2);
  });

  it('recounts the cap from the new size', () => {
    const { detector, eps, fail } = setup({}, 2);
    const [a, b] = eps;
    fail(a!, 5);
    fail(b!, 5);
    expect(detector.ejectedCount).toBe(1);
    const more = [a!, b!, { name: 'c' }, { name: 'd' }];
    detector.setEndpoints(more);
    fail(b!, 1);
    expect(detector.ejectedCount).toBe(2);
  });

  it('is not disturbed when the caller refills the array it passed', () => {
    const { detector, eps, fail } = setup({}, 2);
    const list = [eps[0]!, eps[1]!];
    detector.setEndpoints(list);
    fail(eps[0]!, 5);
    list.length = 0;
    detector.setEndpoints([eps[0]!]);
    expect(detector.stateOf(eps[0]!).state).toBe('ejected');
  });

  it('treats an endpoint it does not track as selectable and ignores its results', () => {
    const { detector, fail, log } = setup();
    const stranger = { name: 'x' };
    fail(stranger, 50);
    expect(detector.isSelectable(stranger)).toBe(true);
    expect(detector.stateOf(stranger).state).toBe('healthy');
    expect(log).toEqual([]);
  });
});

describe('OutlierDetector: options', () => {
  it.each([
    [{ failureRate: 1.5 }, 'failureRate'],
    [{ failureRate: -0.1 }, 'failureRate'],
    [{ maxEjectedShare: 2 }, 'maxEjectedShare'],
    [{ consecutiveFailures: -1 }, 'consecutiveFailures'],
    [{ windowMs: 0 }, 'windowMs'],
    [{ baseEjectionMs: Number.NaN }, 'baseEjectionMs'],
    [{ maxEjectionMs: Number.POSITIVE_INFINITY }, 'maxEjectionMs'],
    [{ probeTimeoutMs: -5 }, 'probeTimeoutMs'],
  ])('refuses %j', (override, field) => {
    expect(() => new OutlierDetector({ ...DEFAULTS, ...override }, new ManualClock())).toThrow(
      expect.objectContaining({
        code: 'ERR_INPUT_INVALID',
        field,
        message: expect.stringMatching(new RegExp(`^outlier detection: ${field} must be in`)),
      }),
    );
  });
});
