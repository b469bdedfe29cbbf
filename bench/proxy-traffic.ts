// bench:proxy's `traffic` scenario (issue 12): the CPU per request that a route table and tracing add
// to a Sigil pair (outbound client sidecar → inbound server sidecar → app, HTTP/1.1), against the
// same pair without them. `routes`: a second listener of the untraced (`off`) pair, whose service
// has 50 HTTPRoutes attached, the one every request takes ranked last (a catch-all below 49 longer
// prefixes with header matches), splitting 90/10 between two services. Tracing at 1% and 100%
// sampling: two more pairs, identical to `off` but for their `tracing:` section, compared with
// `off` and a `control` pair configured like it (two pairs alike differ by several percent). They run interleaved and repeated, saturated (wrk) and at 1,000 req/s; CPU is both
// sidecars' user+system time (/proc). Spans go to a collector in this process that accepts and
// discards OTLP/HTTP exports, so the export's cost is counted in the sidecars and the collector's is not.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import {
  getOnce,
  LoadClient,
  PRIMING_S,
  RATE_PER_S,
  startMachineLoad,
  WARMUP_S,
  WRK_CONNECTIONS,
} from './proxy-measure.js';
import {
  type PairRun,
  type PairScenarioEnv,
  type PairTarget,
  pairRepeatS,
  rateCpuUs,
  runPairRepeat,
  satCpuUs,
  saturatePair,
} from './proxy-pair-runs.js';
import { type Check, fmt, fmtRatio, log, machineLoadLine, median, Table } from './proxy-report.js';
import { httpRouteYaml } from './proxy-route-cost.js';
import {
  type AppPorts,
  type BenchProc,
  type PairPorts,
  sigilInboundConfig,
  sigilOutboundConfig,
  startSidecar,
} from './proxy-setup.js';
import { measureTracingCost } from './proxy-tracing-cost.js';

/**
 * Issue 12's targets: 50 routes and a 90/10 split cost at most 5% more CPU per request, tracing at 1%
 * at most 3%, at 100% at most 15%.
 */
const MAX_RATIO = { routes: 1.05, sampled1: 1.03, sampled100: 1.15 } as const;
type Measured = keyof typeof MAX_RATIO;
type Variant = 'off' | 'control' | Measured;
const VARIANTS: readonly Variant[] = ['off', 'control', 'routes', 'sampled1', 'sampled100'];
const MEASURED: readonly Measured[] = ['routes', 'sampled1', 'sampled100'];
const SAMPLE_RATIO_OF: Record<Variant, number | null> = {
  off: null,
  control: null,
  routes: null,
  sampled1: 0.01,
  sampled100: 1,
};
const LABEL: Record<Variant, string> = {
  off: 'off',
  control: 'control',
  routes: 'routes',
  sampled1: 'trace 1%',
  sampled100: 'trace 100%',
};
const ROUTES = 50;

export interface TrafficEnv extends PairScenarioEnv {
  readonly app: AppPorts;
}

/** Ports the scenario takes: per pair six listeners and two admin ports, and the routed listener. */
export const TRAFFIC_PORTS = 4 * 8 + 1;

export function trafficEstimateS(env: Pick<TrafficEnv, 'repeats' | 'satSeconds' | 'rateSeconds'>): number {
  const perRepeat = pairRepeatS(VARIANTS.length, env.satSeconds, env.rateSeconds);
  return 15 + VARIANTS.length * WARMUP_S + env.repeats * perRepeat;
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

export async function runTrafficScenario(env: TrafficEnv): Promise<Check[]> {
  const procs: BenchProc[] = [];
  let loadClient: LoadClient | undefined;
  const collector = await startSinkCollector();
  try {
    const pairs = {} as Record<Variant, PairTarget>;
    // The routed listener sits in the untraced pair beside the plain one: the same two processes
    // carry both, so the comparison sees only the routing.
    const routedPort = env.takePort();
    for (const variant of VARIANTS) {
      if (variant === 'routes') continue;
      const ports: PairPorts = {
        outHttp: env.takePort(),
        outTcp: env.takePort(),
        outH2: env.takePort(),
        inHttp: env.takePort(),
        inTcp: env.takePort(),
        inH2: env.takePort(),
      };
      const ratio = SAMPLE_RATIO_OF[variant];
      const tracing =
        ratio === null
          ? ''
          : `tracing:\n  collector: ${collector.url}\n  sample_ratio: ${ratio}\n  service_name: bench-${variant}\n`;
      let outboundConfig = sigilOutboundConfig(ports, env.workloadApi, env.takePort(), env.serverId);
      outboundConfig +=
        variant === 'off'
          ? routedListener(routedPort, ports, env, path.join(env.root, 'traffic-routes.yaml'))
          : tracing;
      const inbound = await startSidecar({
        name: `traffic ${LABEL[variant]} server sidecar`,
        uid: env.serverUid,
        configPath: path.join(env.root, `traffic-${variant}-inbound.yaml`),
        config: sigilInboundConfig(ports, env.app, env.workloadApi, env.takePort(), env.policyPath) + tracing,
        proxyBin: env.proxyBin,
      });
      procs.push(inbound);
      const outbound = await startSidecar({
        name: `traffic ${LABEL[variant]} client sidecar`,
        uid: env.clientUid,
        configPath: path.join(env.root, `traffic-${variant}-outbound.yaml`),
        config: outboundConfig,
        proxyBin: env.proxyBin,
      });
      procs.push(outbound);
      const got = await getOnce(ports.outHttp).catch((err: Error) => `error: ${err.message}`);
      if (got !== '200 ok') throw new Error(`traffic ${variant}: answered "${got}" instead of 200 ok`);
      pairs[variant] = { port: ports.outHttp, pids: [outbound.pid, inbound.pid] };
      if (variant === 'off') pairs.routes = { port: routedPort, pids: pairs.off.pids };
    }
    const routed = await getOnce(routedPort).catch((err: Error) => `error: ${err.message}`);
    if (routed !== '200 ok') throw new Error(`traffic routes: answered "${routed}" instead of 200 ok`);
    log(
      'traffic: four Sigil pairs (untraced with a routed listener beside, untraced control, tracing 1%, 100%) answer 200 "ok"',
    );

    loadClient = LoadClient.start();
    log(`traffic: warm-up, ${WARMUP_S} s saturated per pair`);
    for (const variant of VARIANTS) await saturatePair(pairs[variant], WARMUP_S);

    const machineLoad = startMachineLoad([...env.benchPids, ...procs.map((p) => p.pid), loadClient.pid]);
    const results: Array<Record<Variant, PairRun>> = [];
    for (let rep = 0; rep < env.repeats; rep++) {
      const order = rep % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      const runs = await runPairRepeat(order, (v) => pairs[v], loadClient, env.satSeconds, env.rateSeconds);
      results.push(runs);
      log(
        `repeat ${rep + 1}/${env.repeats} traffic: CPU µs/req saturated ${VARIANTS.map((v) => `${LABEL[v]} ${fmt(satCpuUs(runs[v]), 1)}`).join(', ')}; ` +
          `at 1k req/s ${VARIANTS.map((v) => `${LABEL[v]} ${fmt(rateCpuUs(runs[v]), 1)}`).join(', ')}`,
      );
    }
    const backgroundCores = machineLoad();
    const checks = report(results, env);
    log(`traffic: the collector took ${fmt(collector.exports())} exports`);
    log(machineLoadLine(backgroundCores));
    const cost = await measureTracingCost(collector.url, [0.01, 1]);
    const pairUs = median(results.map((r) => satCpuUs(r.off)));
    for (const [ratio, us] of cost) {
      log(
        `tracing at ${ratio * 100}% alone, in this process (both halves of a request, export included): ` +
          `${fmt(us, 2)} µs per request, ${((100 * us) / pairUs).toFixed(1)}% of the untraced pair's ${fmt(pairUs, 1)} µs saturated`,
      );
    }
    return checks;
  } finally {
    await loadClient?.close().catch(() => {});
    await Promise.all(procs.map((p) => p.stop().catch(() => {})));
    await collector.close();
  }
}

/** The table's ratios: the measured variants, and the control against `off` (pair-to-pair spread). */
const COMPARED: readonly Variant[] = ['control', ...MEASURED];

/**
 * What a variant is compared with in one repeat. Routes: the plain listener of the same processes.
 * Tracing is per process, so a traced pair is compared with the two untraced pairs' mean: two pairs
 * configured alike differ by several percent (the control column shows by how much), and the mean
 * halves what one of them would bias.
 */
function baseline(r: Record<Variant, PairRun>, v: Variant, f: (r: PairRun) => number): number {
  if (v === 'routes' || v === 'control') return f(r.off);
  return (f(r.off) + f(r.control)) / 2;
}

function report(results: ReadonlyArray<Record<Variant, PairRun>>, env: TrafficEnv): Check[] {
  log('');
  log(
    `Traffic management: medians of ${env.repeats} interleaved repeats; ratio within each repeat, median (range): routes and control ÷ off, traced ÷ the mean of off and control (the untraced pairs). ` +
      `routes = ${ROUTES} HTTPRoutes on the service, the one taken ranked last, a 90/10 split; trace N% = both sidecars ` +
      `tracing (parent-based: the server sidecar follows the client's decision). ` +
      `Saturation: ${env.satSeconds} s after ${PRIMING_S} s unmeasured, wrk ${WRK_CONNECTIONS} connections; ` +
      `open loop at ${fmt(RATE_PER_S)} req/s for ${env.rateSeconds} s. CPU: both sidecars, user+system.`,
  );
  const table = new Table([
    '',
    ...VARIANTS.map((v) => LABEL[v]),
    ...COMPARED.flatMap((v) => [
      `${LABEL[v]}/${v === 'routes' || v === 'control' ? 'off' : 'untraced'}`,
      '(range)',
    ]),
  ]);
  const ratioOf = (f: (r: PairRun) => number, v: Variant) => results.map((r) => f(r[v]) / baseline(r, v, f));
  const row = (name: string, f: (r: PairRun) => number, digits: number, withRatio: boolean) => {
    table.add([
      name,
      ...VARIANTS.map((v) => fmt(median(results.map((r) => f(r[v]))), digits)),
      ...COMPARED.flatMap((v) => {
        if (!withRatio) return ['', ''];
        const ratio = fmtRatio(ratioOf(f, v));
        return [ratio.median, ratio.spread];
      }),
    ]);
  };
  row('throughput saturated (req/s)', (r) => r.sat.reqPerS, 0, true);
  row('CPU µs/request saturated (pair)', satCpuUs, 1, true);
  row('CPU µs/request at 1k req/s (pair)', rateCpuUs, 1, true);
  row('p50 latency at 1k req/s (ms)', (r) => r.rate.load.p50Ms, 3, false);
  row('p99 latency at 1k req/s (ms)', (r) => r.rate.load.p99Ms, 3, false);
  const failedOf = (v: Variant) =>
    results.reduce((sum, r) => sum + r[v].sat.errors + r[v].rate.load.errors + r[v].rate.load.dropped, 0);
  table.add([
    'failed requests (all runs)',
    ...VARIANTS.map((v) => fmt(failedOf(v))),
    ...COMPARED.flatMap(() => ['', '']),
  ]);
  table.print();
  const checks: Check[] = [];
  for (const variant of MEASURED) {
    for (const [label, f] of [
      ['saturated', satCpuUs],
      ['at 1k req/s', rateCpuUs],
    ] as const) {
      const ratio = median(ratioOf(f, variant));
      const control = median(ratioOf(f, 'control'));
      checks.push({
        name: `${LABEL[variant]}: CPU per request ${label}, vs ${variant === 'routes' ? 'off' : 'untraced'}`,
        value: `${ratio.toFixed(3)}x`,
        range: fmtRatio(ratioOf(f, variant)).spread || undefined,
        target: `≤ ${MAX_RATIO[variant]}x`,
        source: 'issue 12',
        reference: `untraced pair ${fmt(median(results.map((r) => f(r.off))), 1)} µs/request; a second untraced pair (control) ÷ it: ${control.toFixed(3)}x`,
        pass: ratio <= MAX_RATIO[variant],
      });
    }
  }
  const failed = VARIANTS.reduce((sum, v) => sum + failedOf(v), 0);
  checks.push({
    name: 'traffic: failed requests',
    value: fmt(failed),
    target: '0',
    source: 'bench:proxy',
    pass: failed === 0,
  });
  return checks;
}

/**
 * What the untraced client sidecar adds to sigilOutboundConfig: a listener whose service carries the
 * route table, and the two services of its split, both sending to the pair's inbound listener.
 */
function routedListener(port: number, ports: PairPorts, env: TrafficEnv, routesFile: string): string {
  writeFileSync(routesFile, routeTable(ROUTES), { mode: 0o644 });
  const service = (name: string) =>
    `  - { name: ${name}, server_ids: ["${env.serverId}"], endpoints: [{ address: "127.0.0.1:${ports.inHttp}" }] }`;
  return `  - { name: routed, listen: "127.0.0.1:${port}", protocol: http, service: routed }
routes_file: ${routesFile}
services:
${service('routed')}
${service('routed-v2')}
`;
}

/**
 * `count - 1` routes that never match the bench's `GET /` (longer prefixes, each with a header
 * match), then the catch-all canary route: every request is tried against all of them first.
 */
function routeTable(count: number): string {
  const route = (name: string, rule: string) => httpRouteYaml(name, 'routed', rule);
  const others = Array.from({ length: count - 1 }, (_, i) =>
    route(
      `api-v${i}`,
      `{ matches: [{ path: { type: PathPrefix, value: /api/v${i} }, headers: [{ name: x-tenant, value: t${i} }] }], backendRefs: [{ name: routed, port: 80 }] }`,
    ),
  );
  const split = route(
    'canary',
    '{ backendRefs: [{ name: routed, port: 80, weight: 90 }, { name: routed-v2, port: 80, weight: 10 }] }',
  );
  return [...others, split].join('---\n');
}
