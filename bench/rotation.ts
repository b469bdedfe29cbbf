// Rotation under load (issue 4's "nothing dropped", measured through the sidecars): a Sigil pair
// carries continuous traffic while its SVIDs rotate every few seconds (8 s SVID TTLs, renewed at half
// life ± 10%, the same short-TTL knob as test/e2e/rotation.test.ts), and the bench counts failed
// requests and the p99 of requests sent around a rotation against those sent away from one. Two
// loads at once, each from its own open-loop client (proxy-load.ts): HTTP/1.1 through the `http`
// listener (pooled upstream connections, which must survive the swap), and a new connection per
// request through the `tcp` listener, so each request is a fresh mTLS handshake with the current SVIDs.
// A rotation's time is the sidecar's own "Identity rotated" log record.
// `npm run bench:rotation [-- --quick] [-- --results FILE]`: --quick loads for 14 s instead of 26 s.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { openBenchScope, runBench } from './bench-scope.js';
import { drawPorts } from './port-pool.js';
import type { LoadResult, LoadTimeline } from './proxy-load.js';
import { LoadClient, RATE_WARMUP_MS, startMachineLoad } from './proxy-measure.js';
import { fmt, log, machineLoadLine } from './proxy-report.js';
import {
  allowPolicy,
  type BenchProc,
  ensureTools,
  sigilInboundConfig,
  sigilOutboundConfig,
  startApp,
  startSidecar,
} from './proxy-setup.js';
import { type Figure, reportResults } from './results.js';
import { CLIENT_ID, CLIENT_UID, SERVER_ID, SERVER_UID, startSidecarIdentity } from './sidecar-identity.js';

/** Renewed at half life ± 10%: a rotation of each sidecar every 3.6–4.4 s. */
const SVID_TTL_S = 8;
/** Issue 4: across at least 3 workload rotations, zero failed handshakes and zero failed requests. */
const MIN_ROTATIONS = 3;
const H1_RATE_PER_S = 500;
/** Each a full mTLS handshake between the sidecars: well under what two cores hold beside the h1 load. */
const TCP_RATE_PER_S = 100;
/** "Around a rotation": requests sent from this long before a sidecar logged it… */
const BEFORE_MS = 250;
/** …to this long after. */
const AFTER_MS = 750;

interface RotationSplit {
  readonly around: number[];
  readonly away: number[];
  failedAround: number;
}

/** Latencies of the requests sent around any rotation, and of the others; failures near one counted. */
function splitAroundRotations(timeline: LoadTimeline, rotationsAtMs: readonly number[]): RotationSplit {
  const split: RotationSplit = { around: [], away: [], failedAround: 0 };
  timeline.sentAtMs.forEach((at, i) => {
    const near = rotationsAtMs.some((r) => at >= r - BEFORE_MS && at <= r + AFTER_MS);
    const latency = timeline.latencyMs[i]!;
    if (latency >= 0) (near ? split.around : split.away).push(latency);
    else if (near) split.failedAround++;
  });
  return split;
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Times (epoch ms) of the sidecar's "Identity rotated" records. */
function rotationTimes(proc: BenchProc): number[] {
  const times: number[] = [];
  for (const line of proc.logs().split('\n')) {
    if (!line.startsWith('{') || !line.includes('"Identity rotated"')) continue;
    // The proxy logs ISO times (pino's isoTime).
    const record = JSON.parse(line) as { msg?: string; time?: string | number };
    const atMs = typeof record.time === 'string' ? Date.parse(record.time) : (record.time ?? Number.NaN);
    if (record.msg === 'Identity rotated' && Number.isFinite(atMs)) times.push(atMs);
  }
  return times;
}

async function main(): Promise<number> {
  const quick = process.argv.includes('--quick');
  const loadSeconds = quick ? 14 : 26;
  log(
    `bench:rotation — a Sigil pair under ${H1_RATE_PER_S} req/s HTTP/1.1 and ${TCP_RATE_PER_S} new mTLS connections/s, ` +
      `${SVID_TTL_S} s SVIDs, ${loadSeconds} s; about ${loadSeconds + 20} s`,
  );
  ensureTools(log);
  const scope = openBenchScope('rotation', log);
  const { root, procs } = scope;
  try {
    const { server, agent } = await startSidecarIdentity(scope, { x509SvidTtlS: SVID_TTL_S });
    const ports = await drawPorts(10);
    const take = ports.take;
    const app = ports.app();
    const pair = ports.pair();
    procs.push(await startApp(root, app, 'native'));
    const policyPath = path.join(root, 'policy.yaml');
    writeFileSync(policyPath, allowPolicy(CLIENT_ID), { mode: 0o644 });
    const inbound = await startSidecar({
      name: 'server sidecar',
      uid: SERVER_UID,
      configPath: path.join(root, 'inbound.yaml'),
      config: sigilInboundConfig(pair, app, agent.socketPath, take(), policyPath),
    });
    procs.push(inbound);
    const outbound = await startSidecar({
      name: 'client sidecar',
      uid: CLIENT_UID,
      configPath: path.join(root, 'outbound.yaml'),
      config: sigilOutboundConfig(pair, agent.socketPath, take(), SERVER_ID),
    });
    procs.push(outbound);
    const h1Client = LoadClient.start();
    const tcpClient = LoadClient.start();
    scope.clients.push(h1Client, tcpClient);

    const startMs = Date.now();
    const machineLoad = startMachineLoad([
      ...procs.map((p) => p.pid),
      server.child.pid!,
      agent.child.pid!,
      h1Client.pid,
      tcpClient.pid,
    ]);
    log(
      `load: ${loadSeconds} s (after ${RATE_WARMUP_MS} ms unmeasured); SVIDs rotate every ~${SVID_TTL_S / 2} s`,
    );
    const common = { warmupMs: RATE_WARMUP_MS, durationMs: loadSeconds * 1_000, timeline: true } as const;
    const [h1, tcp] = await Promise.all([
      h1Client.run({ ...common, protocol: 'h1', port: pair.outHttp, ratePerS: H1_RATE_PER_S }, () => {}),
      tcpClient.run(
        { ...common, protocol: 'h1', port: pair.outTcp, ratePerS: TCP_RATE_PER_S, newConnectionEach: true },
        () => {},
      ),
    ]);
    const backgroundCores = machineLoad();
    const inWindow = (times: number[]) => times.filter((t) => t >= startMs);
    const clientRotations = inWindow(rotationTimes(outbound));
    const serverRotations = inWindow(rotationTimes(inbound));
    const rotations = [...clientRotations, ...serverRotations].sort((a, b) => a - b);
    log(
      `rotations while loaded: client sidecar ${clientRotations.length}, server sidecar ${serverRotations.length}`,
    );
    const figures = report(h1, tcp, rotations, clientRotations.length, serverRotations.length);
    log(machineLoadLine(backgroundCores));
    reportResults(process.argv, {
      bench: 'rotation',
      figures,
      backgroundCores,
      notes: [
        `${SVID_TTL_S} s SVIDs; ${H1_RATE_PER_S} req/s HTTP/1.1 through the http listener and ${TCP_RATE_PER_S} req/s through the tcp listener, each on a new connection (a new mTLS handshake between the sidecars), for ${loadSeconds} s. "Around a rotation": sent from ${BEFORE_MS} ms before to ${AFTER_MS} ms after a sidecar logged "Identity rotated".`,
      ],
    });
    const missed = figures.filter((f) => f.pass === false);
    log(missed.length === 0 ? 'PASS: every target met' : `FAIL: ${missed.length} target(s) missed`);
    return missed.length === 0 ? 0 : 1;
  } finally {
    await scope.cleanup();
  }
}

function report(
  h1: LoadResult,
  tcp: LoadResult,
  rotations: readonly number[],
  clientRotations: number,
  serverRotations: number,
): Figure[] {
  const ms = (v: number) => `${fmt(v, 2)} ms`;
  const figures: Figure[] = [
    {
      name: 'SVID rotations while loaded, client / server sidecar',
      value: `${clientRotations} / ${serverRotations}`,
      target: `≥ ${MIN_ROTATIONS} each`,
      source: 'issue 4',
      pass: clientRotations >= MIN_ROTATIONS && serverRotations >= MIN_ROTATIONS,
    },
  ];
  for (const [label, load] of [
    ['HTTP/1.1, pooled', h1],
    ['new mTLS connection per request (tcp)', tcp],
  ] as const) {
    const split = splitAroundRotations(load.timeline!, rotations);
    const failed = load.errors + load.dropped;
    log(
      `${label}: ${fmt(load.completed)} answered, ${fmt(failed)} failed${load.firstError ? ` (first: ${load.firstError})` : ''}; ` +
        `p99 around rotations ${ms(percentile(split.around, 99))} (${fmt(split.around.length)} requests), ` +
        `away ${ms(percentile(split.away, 99))} (${fmt(split.away.length)})`,
    );
    figures.push(
      {
        name: `${label}: failed requests across the rotations`,
        value: `${fmt(failed)} of ${fmt(load.sent)}`,
        target: '0',
        source: 'issue 4',
        reference: `${fmt(split.failedAround)} of the failures around a rotation`,
        pass: failed === 0,
      },
      {
        name: `${label}: p99 of requests sent around a rotation`,
        value: ms(percentile(split.around, 99)),
        reference: `away from rotations: ${ms(percentile(split.away, 99))}; p50 ${ms(percentile(split.around, 50))} / ${ms(percentile(split.away, 50))}`,
      },
    );
  }
  return figures;
}

runBench('rotation', main);
