// Local rate limits through real sidecars (issue 12): the backend's inbound listeners limit per
// caller SPIFFE ID, per named principal (an override) and in total, while two callers, each behind
// its own sidecar with its own identity, drive open-loop load through their outbound listeners, 3x
// to 5x above the limits. A saturated bucket admits burst + rate x the seconds it was deciding, and
// those seconds are bounded from the client's side whatever the delays on the way: every decision
// falls between the first request sent and the last answer received, and the limiter decided from
// no later than the first answer until no earlier than the last send. Admitted counts must lie
// within those bounds (10% below the lower one); on a quiet machine they are a few percent apart,
// on a loaded one they widen honestly instead of failing. Timestamps at the app are no measure:
// under load, requests admitted 20 ms apart reached it bunched. The client sees 429 with
// Retry-After; the backend's metrics count each refusal by principal.
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { servicesYaml, TD, useResilienceMesh } from '../support/resilience-mesh.js';
import { get, scrape, total } from '../support/traffic.js';

// Bursts of 2 s of the rate: a bucket that sees no request for longer than burst / rate loses
// tokens, and a loaded machine can stall a sidecar for a second; the bounds below assume it does not.
const PER_CALLER = { requests_per_second: 50, burst: 100 };
const OVERRIDE = { requests_per_second: 40, burst: 80 };
const TOTAL = { requests_per_second: 60, burst: 120 };
const APPS = ['percaller', 'overridden', 'shared'] as const;

const mesh = useResilienceMesh([
  {
    name: 'backend',
    uid: 1,
    apps: APPS,
    inbound: {
      percaller: { rate_limit: { per_caller: PER_CALLER } },
      overridden: {
        rate_limit: {
          per_caller: { requests_per_second: 10, burst: 10 },
          overrides: [{ principals: [`${TD}/beta-proxy`], ...OVERRIDE }],
        },
      },
      shared: { rate_limit: { total: TOTAL } },
    },
  },
  ...(['alpha', 'beta'] as const).map((name, i) => ({
    name,
    uid: [65534, 3][i]!,
    outbound: (m: { id(s: string): string; inbound(a: string): string }) =>
      servicesYaml(
        APPS.map((app) => ({ name: app, server_ids: [m.id('backend')], endpoints: [m.inbound(app)] })),
      ),
  })),
]);

interface Answer {
  readonly status: number;
  readonly retryAfter: string | undefined;
  readonly sigilError: string | undefined;
}

interface Run {
  readonly answers: readonly Answer[];
  /** Wall-clock milliseconds of the first and last request sent, and of the first and last answer. */
  readonly firstSentMs: number;
  readonly lastSentMs: number;
  readonly firstAnswerMs: number;
  readonly lastAnswerMs: number;
  count(status: number): number;
}

/** `rps` requests a second for `durationMs` to 127.0.0.1:`port``path`, open loop (each starts on schedule). */
async function drive(port: number, path: string, rps: number, durationMs: number): Promise<Run> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const due = Math.round((rps * durationMs) / 1000);
  const pending: Array<Promise<Answer>> = [];
  const startedMs = Date.now();
  let lastSentMs = startedMs;
  let firstAnswerMs = Number.POSITIVE_INFINITY;
  const answered = (answer: Answer) => {
    firstAnswerMs = Math.min(firstAnswerMs, Date.now());
    return answer;
  };
  while (pending.length < due) {
    const now = Math.min(due, Math.floor(((Date.now() - startedMs) * rps) / 1000) + 1);
    while (pending.length < now) {
      lastSentMs = Date.now();
      pending.push(request(port, path, agent).then(answered));
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const answers = await Promise.all(pending);
  const lastAnswerMs = Date.now();
  agent.destroy();
  return {
    answers,
    firstSentMs: startedMs,
    lastSentMs,
    firstAnswerMs,
    lastAnswerMs,
    count: (status) => answers.filter((a) => a.status === status).length,
  };
}

function request(port: number, path: string, agent: http.Agent): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        const header = (name: string) => res.headers[name] as string | undefined;
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: header('retry-after'),
          sigilError: header('x-sigil-error'),
        });
      });
    });
    req.on('error', () => resolve({ status: 0, retryAfter: undefined, sigilError: undefined }));
  });
}

type Rate = { readonly requests_per_second: number; readonly burst: number };

/**
 * The limit held for `admitted` requests of `runs` (run at the same time against one bucket): no
 * more than burst + rate x the longest the bucket can have been deciding, and no fewer than 90% of
 * burst + rate x the shortest.
 */
function expectLimitHeld(rate: Rate, admitted: number, runs: readonly Run[]): void {
  const longestS =
    (Math.max(...runs.map((r) => r.lastAnswerMs)) - Math.min(...runs.map((r) => r.firstSentMs))) / 1000;
  const shortestS =
    (Math.max(...runs.map((r) => r.lastSentMs)) - Math.min(...runs.map((r) => r.firstAnswerMs))) / 1000;
  const most = rate.burst + rate.requests_per_second * longestS;
  const fewest = rate.burst + rate.requests_per_second * shortestS;
  // +1: a token refilled during the last millisecond may be taken.
  expect(admitted).toBeLessThanOrEqual(Math.floor(most) + 1);
  expect(admitted).toBeGreaterThanOrEqual(Math.floor(0.9 * fewest));
}

describe('local rate limits through the sidecars', () => {
  it('holds a caller to its per-caller rate, leaves another caller alone, and answers 429 with Retry-After', async () => {
    const [alpha, beta] = await Promise.all([
      drive(mesh.port('alpha', 'percaller'), '/alpha', 200, 3_000),
      drive(mesh.port('beta', 'percaller'), '/beta', 20, 3_000),
    ]);
    const admitted = alpha.count(200);
    expectLimitHeld(PER_CALLER, admitted, [alpha]);
    expect(alpha.count(200) + alpha.count(429)).toBe(alpha.answers.length);
    for (const refused of alpha.answers.filter((a) => a.status === 429)) {
      expect(refused.sigilError).toBe('rate-limited');
      // 50/s: the next token is at most 20 ms away, which rounds up to the 1 s minimum.
      expect(refused.retryAfter).toBe('1');
    }
    // Beta stayed under its own limit the whole time: alpha's exhaustion did not touch it.
    expect(beta.count(200)).toBe(beta.answers.length);
    expect(mesh.app('percaller').count((r) => r.path === '/alpha')).toBe(admitted);
    expect(mesh.app('percaller').count((r) => r.path === '/beta')).toBe(beta.answers.length);

    const samples = await scrape(mesh.adminPort('backend'));
    const limited = (principal: string) =>
      total(samples, 'sigil_proxy_rate_limited_total', { listener: 'percaller', principal });
    expect(limited(`${TD}/alpha-proxy`)).toBe(alpha.count(429));
    expect(limited(`${TD}/beta-proxy`)).toBe(0);
    expect(
      total(samples, 'sigil_proxy_rate_limited_total', {
        principal: `${TD}/alpha-proxy`,
        limit: 'per_caller',
      }),
    ).toBe(alpha.count(429));
  });

  it('gives a principal named in an override its own rate', async () => {
    const beta = await drive(mesh.port('beta', 'overridden'), '/', 200, 2_000);
    expectLimitHeld(OVERRIDE, beta.count(200), [beta]);
    // Far above what the per-caller rate (10/s, burst 10: about 30 in 2 s) would have let through.
    expect(beta.count(200)).toBeGreaterThan(100);
    const samples = await scrape(mesh.adminPort('backend'));
    expect(
      total(samples, 'sigil_proxy_rate_limited_total', {
        listener: 'overridden',
        principal: `${TD}/beta-proxy`,
        limit: 'override',
      }),
    ).toBe(beta.count(429));
  });

  it('holds every caller together to the total rate', async () => {
    const runs = await Promise.all([
      drive(mesh.port('alpha', 'shared'), '/', 100, 3_000),
      drive(mesh.port('beta', 'shared'), '/', 100, 3_000),
    ]);
    const admitted = runs[0]!.count(200) + runs[1]!.count(200);
    expectLimitHeld(TOTAL, admitted, runs);
    // Both callers got a share: the total is not first come, first served for one of them.
    for (const run of runs) expect(run.count(200)).toBeGreaterThan(0.25 * admitted);
    const samples = await scrape(mesh.adminPort('backend'));
    expect(total(samples, 'sigil_proxy_rate_limited_total', { listener: 'shared', limit: 'total' })).toBe(
      runs[0]!.count(429) + runs[1]!.count(429),
    );
  });

  it('shows each listener rate limit in /config', async () => {
    const config = JSON.parse((await get(mesh.adminPort('backend'), '/config')).body) as {
      inbound: Array<{ name: string; rateLimit: unknown }>;
    };
    const byName = new Map(config.inbound.map((l) => [l.name, l.rateLimit]));
    expect(byName.get('shared')).toEqual({
      total: { requestsPerSecond: 60, burst: 120 },
      perCaller: null,
      overrides: [],
    });
    expect(byName.get('overridden')).toMatchObject({
      overrides: [{ principals: [`${TD}/beta-proxy`], requestsPerSecond: 40, burst: 80 }],
    });
  });
});
