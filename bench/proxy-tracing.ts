// bench:proxy's `tracing` scenario (issue 12): the CPU per request that tracing adds to a Sigil
// pair (outbound client sidecar → inbound server sidecar → app, HTTP/1.1), at 1% and at 100%
// sampling, against the same pair without tracing. Three pairs, identical but for their `tracing:`
// section, run interleaved and repeated, saturated (wrk) and at 1,000 req/s; CPU is both sidecars'
// user+system time (/proc). Spans go to a collector in this process that accepts and discards
// OTLP/HTTP exports, so the export's cost is counted in the sidecars and the collector's is not.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { LoadResult } from './proxy-load.js';
import {
  cpuMsOf,
  cpuOf,
  getOnce,
  LoadClient,
  PRIMING_S,
  RATE_PER_S,
  RATE_WARMUP_MS,
  runWrk,
  type SatResult,
  startMachineLoad,
  WARMUP_S,
  WRK_CONNECTIONS,
} from './proxy-measure.js';
import { type Check, fmt, fmtRatio, log, machineLoadLine, median, Table } from './proxy-report.js';
import {
  type AppPorts,
  type BenchProc,
  type PairPorts,
  sigilInboundConfig,
  sigilOutboundConfig,
  startSidecar,
} from './proxy-setup.js';

/** Issue 12's targets: tracing at 1% costs at most 3% more CPU per request, at 100% at most 15%. */
const MAX_RATIO = { sampled1: 1.03, sampled100: 1.15 } as const;
type Variant = 'off' | 'sampled1' | 'sampled100';
const VARIANTS: readonly Variant[] = ['off', 'sampled1', 'sampled100'];
const RATIO_OF: Record<Variant, number | null> = { off: null, sampled1: 0.01, sampled100: 1 };
const LABEL: Record<Variant, string> = { off: 'off', sampled1: '1%', sampled100: '100%' };

export interface TracingEnv {
  readonly root: string;
  readonly workloadApi: string;
  readonly policyPath: string;
  readonly serverId: string;
  readonly clientUid: number;
  readonly serverUid: number;
  readonly app: AppPorts;
  readonly takePort: () => number;
  readonly benchPids: readonly number[];
  readonly proxyBin: string | undefined;
  readonly repeats: number;
  readonly satSeconds: number;
  readonly rateSeconds: number;
}

/** Ports the scenario takes: per variant six listeners and two admin ports. */
export const TRACING_PORTS = VARIANTS.length * 8;

export function tracingEstimateS(env: Pick<TracingEnv, 'repeats' | 'satSeconds' | 'rateSeconds'>): number {
  const perRepeat =
    VARIANTS.length * (PRIMING_S + env.satSeconds + 0.4 + RATE_WARMUP_MS / 1_000 + env.rateSeconds + 0.3);
  return 15 + VARIANTS.length * WARMUP_S + env.repeats * perRepeat;
}

interface Run {
  readonly sat: SatResult;
  readonly rate: { readonly load: LoadResult; readonly cpuMs: number };
}

/** A collector that takes every export and answers success, counting spans' bytes only. */
async function startSinkCollector(): Promise<{ url: string; exports: () => number; close(): Promise<void> }> {
  let exports = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      exports++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    exports: () => exports,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function runTracingScenario(env: TracingEnv): Promise<Check[]> {
  const procs: BenchProc[] = [];
  let loadClient: LoadClient | undefined;
  const collector = await startSinkCollector();
  try {
    const pairs = {} as Record<Variant, { port: number; pids: number[] }>;
    for (const variant of VARIANTS) {
      const ports: PairPorts = {
        outHttp: env.takePort(),
        outTcp: env.takePort(),
        outH2: env.takePort(),
        inHttp: env.takePort(),
        inTcp: env.takePort(),
        inH2: env.takePort(),
      };
      const ratio = RATIO_OF[variant];
      const tracing =
        ratio === null
          ? ''
          : `tracing:\n  collector: ${collector.url}\n  sample_ratio: ${ratio}\n  service_name: bench-${variant}\n`;
      const inbound = await startSidecar({
        name: `tracing ${LABEL[variant]} server sidecar`,
        uid: env.serverUid,
        configPath: path.join(env.root, `tracing-${variant}-inbound.yaml`),
        config: sigilInboundConfig(ports, env.app, env.workloadApi, env.takePort(), env.policyPath) + tracing,
        proxyBin: env.proxyBin,
      });
      procs.push(inbound);
      const outbound = await startSidecar({
        name: `tracing ${LABEL[variant]} client sidecar`,
        uid: env.clientUid,
        configPath: path.join(env.root, `tracing-${variant}-outbound.yaml`),
        config: sigilOutboundConfig(ports, env.workloadApi, env.takePort(), env.serverId) + tracing,
        proxyBin: env.proxyBin,
      });
      procs.push(outbound);
      const got = await getOnce(ports.outHttp).catch((err: Error) => `error: ${err.message}`);
      if (got !== '200 ok') throw new Error(`tracing ${variant}: answered "${got}" instead of 200 ok`);
      pairs[variant] = { port: ports.outHttp, pids: [outbound.pid, inbound.pid] };
    }
    log('tracing: three Sigil pairs (tracing off, 1%, 100%) answer 200 "ok"');

    const saturate = async (variant: Variant, seconds: number): Promise<SatResult> => {
      const before = cpuOf(pairs[variant].pids);
      const res = await runWrk(pairs[variant].port, seconds);
      const after = cpuOf(pairs[variant].pids);
      const sysMs = after.sysMs - before.sysMs;
      return { ...res, cpuMs: after.userMs - before.userMs + sysMs, sysMs };
    };
    loadClient = LoadClient.start();
    const atRate = async (variant: Variant): Promise<Run['rate']> => {
      let before = 0;
      const load = await loadClient!.run(
        {
          protocol: 'h1',
          port: pairs[variant].port,
          ratePerS: RATE_PER_S,
          warmupMs: RATE_WARMUP_MS,
          durationMs: env.rateSeconds * 1_000,
        },
        () => {
          before = cpuMsOf(pairs[variant].pids);
        },
      );
      return { load, cpuMs: cpuMsOf(pairs[variant].pids) - before };
    };
    log(`tracing: warm-up, ${WARMUP_S} s saturated per pair`);
    for (const variant of VARIANTS) await saturate(variant, WARMUP_S);

    const machineLoad = startMachineLoad([...env.benchPids, ...procs.map((p) => p.pid), loadClient.pid]);
    const results: Array<Record<Variant, Run>> = [];
    for (let rep = 0; rep < env.repeats; rep++) {
      const order = rep % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      const sat = {} as Record<Variant, SatResult>;
      for (const variant of order) {
        await saturate(variant, PRIMING_S);
        sat[variant] = await saturate(variant, env.satSeconds);
      }
      const rate = {} as Record<Variant, Run['rate']>;
      for (const variant of order) rate[variant] = await atRate(variant);
      const runs = {} as Record<Variant, Run>;
      for (const variant of VARIANTS) runs[variant] = { sat: sat[variant], rate: rate[variant] };
      results.push(runs);
      log(
        `repeat ${rep + 1}/${env.repeats} tracing: CPU µs/req saturated ${VARIANTS.map((v) => `${LABEL[v]} ${fmt(satCpuUs(runs[v]), 1)}`).join(', ')}; ` +
          `at 1k req/s ${VARIANTS.map((v) => `${LABEL[v]} ${fmt(rateCpuUs(runs[v]), 1)}`).join(', ')}`,
      );
    }
    const backgroundCores = machineLoad();
    const checks = report(results, env);
    log(`tracing: the collector took ${fmt(collector.exports())} exports`);
    log(machineLoadLine(backgroundCores));
    return checks;
  } finally {
    await loadClient?.close().catch(() => {});
    await Promise.all(procs.map((p) => p.stop().catch(() => {})));
    await collector.close();
  }
}

function satCpuUs(run: Run): number {
  return (run.sat.cpuMs! * 1_000) / run.sat.requests;
}

function rateCpuUs(run: Run): number {
  return (run.rate.cpuMs * 1_000) / (run.rate.load.completed + run.rate.load.errors);
}

function report(results: ReadonlyArray<Record<Variant, Run>>, env: TracingEnv): Check[] {
  log('');
  log(
    `Tracing: medians of ${env.repeats} interleaved repeats; ratio = traced ÷ off within each repeat, median (range). ` +
      `Both sidecars of a pair trace (parent-based: the server sidecar follows the client's decision). ` +
      `Saturation: ${env.satSeconds} s after ${PRIMING_S} s unmeasured, wrk ${WRK_CONNECTIONS} connections; ` +
      `open loop at ${fmt(RATE_PER_S)} req/s for ${env.rateSeconds} s. CPU: both sidecars, user+system.`,
  );
  const table = new Table(['', 'off', '1%', '100%', '1%/off', '(range)', '100%/off', '(range)']);
  const ratios = {} as Record<string, Record<'sampled1' | 'sampled100', number>>;
  const row = (name: string, f: (r: Run) => number, digits: number, withRatio: boolean) => {
    const of = (v: Variant) => results.map((r) => f(r[v]));
    const off = of('off');
    const r1 = fmtRatio(of('sampled1').map((v, i) => v / off[i]!));
    const r100 = fmtRatio(of('sampled100').map((v, i) => v / off[i]!));
    table.add([
      name,
      fmt(median(off), digits),
      fmt(median(of('sampled1')), digits),
      fmt(median(of('sampled100')), digits),
      withRatio ? r1.median : '',
      withRatio ? r1.spread : '',
      withRatio ? r100.median : '',
      withRatio ? r100.spread : '',
    ]);
    ratios[name] = {
      sampled1: median(of('sampled1').map((v, i) => v / off[i]!)),
      sampled100: median(of('sampled100').map((v, i) => v / off[i]!)),
    };
  };
  row('throughput saturated (req/s)', (r) => r.sat.reqPerS, 0, true);
  row('CPU µs/request saturated (pair)', satCpuUs, 1, true);
  row('CPU µs/request at 1k req/s (pair)', rateCpuUs, 1, true);
  row('p50 latency at 1k req/s (ms)', (r) => r.rate.load.p50Ms, 3, false);
  row('p99 latency at 1k req/s (ms)', (r) => r.rate.load.p99Ms, 3, false);
  table.print();
  const checks: Check[] = [];
  for (const [variant, max] of Object.entries(MAX_RATIO) as Array<['sampled1' | 'sampled100', number]>) {
    for (const name of ['CPU µs/request saturated (pair)', 'CPU µs/request at 1k req/s (pair)']) {
      const ratio = ratios[name]![variant];
      checks.push({
        name: `tracing at ${LABEL[variant]}: ${name.replace(' (pair)', '')}, vs off`,
        value: `${ratio.toFixed(3)}x`,
        target: `≤ ${max}x`,
        pass: ratio <= max,
      });
    }
  }
  return checks;
}
