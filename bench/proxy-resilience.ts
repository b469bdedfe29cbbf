// bench:proxy's `resilience` scenario (issue 11): what upstream services with retries, a retry budget,
// outlier detection and two endpoints cost on the happy path, and what they do when the app fails.
//   Happy path: CPU per request of the Sigil pair (both sidecars, /proc) through a "plain" service
//     (one endpoint, max_attempts 1, outlier detection off) and a "resilient" one (two endpoints,
//     default retries, budget and outlier detection), interleaved and repeated, saturated (wrk) and
//     at 1,000 req/s. Same two sidecar processes for both, so only the configuration differs.
//   Faults: an app failing 30% then 100% of requests with 503 (proxy-fault-backend.ts), at a fixed rate
//     through the client sidecar with retries off and on: client success and amplification (requests
//     the app saw ÷ requests the client sent), against the bounds the retry budget promises.
// Entered from proxy.ts once identity is set up; prints its own tables and returns its checks.
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
  pairRepeatS,
  rateCpuUs,
  runPairRepeat,
  satCpuUs,
  saturatePair,
} from './proxy-pair-runs.js';
import {
  type Check,
  fmt,
  fmtRatio,
  log,
  MAX_ERROR_SHARE,
  machineLoadLine,
  median,
  Table,
} from './proxy-report.js';
import { FAULT_RUNS, reportFaults, runFaults } from './proxy-resilience-faults.js';
import {
  type BenchInbound,
  type BenchService,
  type BenchServiceSettings,
  FaultBackend,
  sigilEndpointsInboundConfig,
  sigilServicesOutboundConfig,
} from './proxy-resilience-setup.js';
import { ROUTE_RULES } from './proxy-route-cost.js';
import { type BenchProc, startSidecar } from './proxy-setup.js';
import { measureStackCost } from './proxy-stack-cost.js';

/** Issue 11: the happy path with every mechanism on costs at most 5% more CPU per request. */
const MAX_OVERHEAD_RATIO = 1.05;
type Variant = 'plain' | 'resilient';
const VARIANTS: readonly Variant[] = ['plain', 'resilient'];

export interface ResilienceEnv extends PairScenarioEnv {
  /** The app's HTTP/1.1 port: what the happy-path runs reach through the sidecars. */
  readonly appPort: number;
  /** The fault runs' load: requests per second, for how long. */
  readonly faultRatePerS: number;
  readonly faultSeconds: number;
}

/** Ports the scenario takes: 2 + faults outbound, 3 + faults inbound, 2 admin, the failing app. */
export const RESILIENCE_PORTS = 2 + FAULT_RUNS.length + 3 + FAULT_RUNS.length + 2 + 1;

export function resilienceEstimateS(
  env: Pick<ResilienceEnv, 'repeats' | 'satSeconds' | 'rateSeconds' | 'faultSeconds'>,
): number {
  const perRepeat = pairRepeatS(VARIANTS.length, env.satSeconds, env.rateSeconds);
  return (
    10 + VARIANTS.length * WARMUP_S + env.repeats * perRepeat + FAULT_RUNS.length * (env.faultSeconds + 0.5)
  );
}

/** Runs the scenario and prints its tables; the checks go into the bench's verdict table. */
export async function runResilienceScenario(env: ResilienceEnv): Promise<Check[]> {
  const procs: BenchProc[] = [];
  let loadClient: LoadClient | undefined;
  try {
    // --- The failing app, the server sidecar (one listener per endpoint), the client sidecar.
    const faultApp = await FaultBackend.start(env.takePort());
    procs.push(faultApp.proc);
    const inbound = (name: string, appPort: number): BenchInbound => ({
      name,
      listenPort: env.takePort(),
      appPort,
    });
    const happyIn = ['plain', 'res-a', 'res-b'].map((name) => inbound(name, env.appPort));
    const faultIn = FAULT_RUNS.map((run) => inbound(run.name, faultApp.port));
    const service = (name: string, endpoints: readonly BenchInbound[], settings: BenchServiceSettings) =>
      ({
        name,
        listenPort: env.takePort(),
        endpointPorts: endpoints.map((e) => e.listenPort),
        settings,
      }) satisfies BenchService;
    const services = {
      plain: service('plain', [happyIn[0]!], { maxAttempts: 1, outlierDetection: false }),
      resilient: service('resilient', [happyIn[1]!, happyIn[2]!], {}),
    };
    const faultServices = FAULT_RUNS.map((run, i) => service(run.name, [faultIn[i]!], run.settings));
    const serverSidecar = await startSidecar({
      name: 'resilience server sidecar',
      uid: env.serverUid,
      configPath: path.join(env.root, 'resilience-inbound.yaml'),
      config: sigilEndpointsInboundConfig(
        [...happyIn, ...faultIn],
        env.workloadApi,
        env.takePort(),
        env.policyPath,
      ),
      proxyBin: env.proxyBin,
    });
    procs.push(serverSidecar);
    const clientAdminPort = env.takePort();
    const clientSidecar = await startSidecar({
      name: 'resilience client sidecar',
      uid: env.clientUid,
      configPath: path.join(env.root, 'resilience-outbound.yaml'),
      config: sigilServicesOutboundConfig(
        [services.plain, services.resilient, ...faultServices],
        env.workloadApi,
        clientAdminPort,
        env.serverId,
      ),
      proxyBin: env.proxyBin,
    });
    procs.push(clientSidecar);
    await faultApp.set(0);
    for (const s of [services.plain, services.resilient, ...faultServices]) {
      const got = await getOnce(s.listenPort).catch((err: Error) => `error: ${err.message}`);
      if (got !== '200 ok')
        throw new Error(`resilience: service ${s.name} answered "${got}" instead of 200 ok`);
    }
    log('resilience: every service answers 200 "ok" through the Sigil pair');

    // --- Happy path: plain vs resilient, interleaved, order swapped every repeat.
    const pairPids = [clientSidecar.pid, serverSidecar.pid];
    const targetOf = (variant: Variant) => ({ port: services[variant].listenPort, pids: pairPids });
    loadClient = LoadClient.start();
    log(`resilience: warm-up, ${WARMUP_S} s saturated per service`);
    for (const variant of VARIANTS) await saturatePair(targetOf(variant), WARMUP_S);

    const machineLoad = startMachineLoad([...env.benchPids, ...procs.map((p) => p.pid), loadClient.pid]);
    const results: Array<Record<Variant, PairRun>> = [];
    for (let rep = 0; rep < env.repeats; rep++) {
      const order = rep % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      const runs = await runPairRepeat(order, targetOf, loadClient, env.satSeconds, env.rateSeconds);
      results.push(runs);
      const satCpu = (v: Variant) => satCpuUs(runs[v]);
      const rateCpu = (v: Variant) => rateCpuUs(runs[v]);
      log(
        `repeat ${rep + 1}/${env.repeats} resilience: req/s plain ${fmt(runs.plain.sat.reqPerS)}, resilient ${fmt(runs.resilient.sat.reqPerS)}; ` +
          `CPU µs/req saturated plain ${fmt(satCpu('plain'), 1)}, resilient ${fmt(satCpu('resilient'), 1)} ` +
          `(${(satCpu('resilient') / satCpu('plain')).toFixed(3)}x); at 1k req/s plain ${fmt(rateCpu('plain'), 1)}, ` +
          `resilient ${fmt(rateCpu('resilient'), 1)} (${(rateCpu('resilient') / rateCpu('plain')).toFixed(3)}x)`,
      );
    }
    const backgroundCores = machineLoad();
    const checks = reportHappyPath(results, env);
    log(machineLoadLine(backgroundCores));
    const stack = await measureStackCost();
    const pairUs = median(results.map((r) => satCpuUs(r.plain)));
    const addedNs = stack.resilientNs - stack.plainNs;
    log(
      `the stacks alone, in this process (pools answering at once): plain ${fmt(stack.plainNs)} ns, resilient ` +
        `${fmt(stack.resilientNs)} ns per request: the layers add ${fmt(addedNs)} ns, ` +
        `${((100 * addedNs) / (pairUs * 1_000)).toFixed(1)}% of the pair's ${fmt(pairUs, 1)} µs per request saturated`,
    );
    const routedNs = stack.routes.routedNs - stack.routes.plainNs;
    log(
      `routing alone (${ROUTE_RULES} routes, the request taking the last, a 90/10 split): plain ${fmt(stack.routes.plainNs)} ns, ` +
        `routed ${fmt(stack.routes.routedNs)} ns per request: routing adds ${fmt(routedNs)} ns, ` +
        `${((100 * routedNs) / (pairUs * 1_000)).toFixed(1)}% of the pair's ${fmt(pairUs, 1)} µs per request saturated`,
    );

    // --- Faults: one run each, at a fixed rate through the client sidecar.
    const faults = await runFaults(
      faultApp,
      clientAdminPort,
      faultServices.map((f) => f.listenPort),
      env.faultRatePerS,
      env.faultSeconds,
    );
    checks.push(...reportFaults(faults, env.faultRatePerS, env.faultSeconds));
    return checks;
  } finally {
    await loadClient?.close().catch(() => {});
    // Stopped before the bench's other scenarios start, so they run on a machine as quiet as before.
    await Promise.all(procs.map((p) => p.stop().catch(() => {})));
  }
}

function reportHappyPath(results: ReadonlyArray<Record<Variant, PairRun>>, env: ResilienceEnv): Check[] {
  log('');
  log(
    `Resilience, happy path: medians of ${env.repeats} interleaved repeats; ratio = resilient ÷ plain within each repeat, median (range). ` +
      `plain = 1 endpoint, max_attempts 1, outlier detection off; resilient = 2 endpoints, default retries (3 tries, budget) and outlier detection. ` +
      `Saturation: ${env.satSeconds} s after ${PRIMING_S} s unmeasured, wrk ${WRK_CONNECTIONS} connections; ` +
      `open loop at ${fmt(RATE_PER_S)} req/s for ${env.rateSeconds} s. CPU: both sidecars, user+system.`,
  );
  const table = new Table(['', 'plain', 'resilient', 'resilient/plain', '(range)']);
  const row = (name: string, f: (r: PairRun) => number, digits: number, withRatio: boolean) => {
    const plain = results.map((r) => f(r.plain));
    const resilient = results.map((r) => f(r.resilient));
    const ratio = fmtRatio(resilient.map((v, i) => v / plain[i]!));
    table.add([
      name,
      fmt(median(plain), digits),
      fmt(median(resilient), digits),
      withRatio ? ratio.median : '',
      withRatio ? ratio.spread : '',
    ]);
    return median(resilient.map((v, i) => v / plain[i]!));
  };
  row('throughput saturated (req/s)', (r) => r.sat.reqPerS, 0, true);
  const satRatio = row('CPU µs/request saturated (pair)', satCpuUs, 1, true);
  row('  of which kernel (system time)', (r) => (r.sat.sysMs! * 1_000) / r.sat.requests, 1, true);
  const rateRatio = row('CPU µs/request at 1k req/s (pair)', rateCpuUs, 1, true);
  row('p50 latency at 1k req/s (ms)', (r) => r.rate.load.p50Ms, 3, false);
  row('p99 latency at 1k req/s (ms)', (r) => r.rate.load.p99Ms, 3, false);
  const failedOf = (v: Variant) =>
    results.reduce((sum, r) => sum + r[v].sat.errors + r[v].rate.load.errors + r[v].rate.load.dropped, 0);
  const requestsOf = (v: Variant) =>
    results.reduce((sum, r) => sum + r[v].sat.requests + r[v].rate.load.sent, 0);
  table.add(['failed requests (all runs)', fmt(failedOf('plain')), fmt(failedOf('resilient')), '', '']);
  table.print();
  const failed = failedOf('plain') + failedOf('resilient');
  const requests = requestsOf('plain') + requestsOf('resilient');
  const spreadOf = (f: (r: PairRun) => number) =>
    fmtRatio(results.map((r) => f(r.resilient) / f(r.plain))).spread || undefined;
  const plainUs = (f: (r: PairRun) => number) =>
    `plain (1 endpoint, no retries, no outlier detection): ${fmt(median(results.map((r) => f(r.plain))), 1)} µs/request`;
  return [
    {
      name: 'resilience: CPU per request saturated, resilient vs plain',
      value: `${satRatio.toFixed(3)}x`,
      range: spreadOf(satCpuUs),
      target: `≤ ${MAX_OVERHEAD_RATIO}x`,
      source: 'issue 11',
      reference: plainUs(satCpuUs),
      pass: satRatio <= MAX_OVERHEAD_RATIO,
    },
    {
      name: 'resilience: CPU per request at 1k req/s, resilient vs plain',
      value: `${rateRatio.toFixed(3)}x`,
      range: spreadOf(rateCpuUs),
      target: `≤ ${MAX_OVERHEAD_RATIO}x`,
      source: 'issue 11',
      reference: plainUs(rateCpuUs),
      pass: rateRatio <= MAX_OVERHEAD_RATIO,
    },
    {
      name: 'resilience: failed requests on the happy path',
      value: `${fmt(failed)} of ${fmt(requests)}`,
      target: `≤ ${MAX_ERROR_SHARE * 100}%`,
      source: 'bench:proxy',
      pass: failed <= MAX_ERROR_SHARE * requests,
    },
  ];
}
