// Sidecar benchmark: the same load sent directly to an app, through a Sigil outbound+inbound sidecar
// pair, and through an HAProxy mTLS sidecar pair configured the same way, interleaved in one run and
// repeated; medians reported, each as a ratio to HAProxy of the same repeat (only ratios carry over
// between machines; see shared/proxy-performance-notes.md). Three kinds of app traffic:
//   HTTP/1.1  Sigil `http` listeners (L7, undici) against HAProxy `mode http`, keep-alive
//   TCP       HTTP/1.1 carried through Sigil `tcp` pipes against HAProxy `mode tcp`
//   HTTP/2    the app's h2c through Sigil `http2` pipes against HAProxy `mode tcp`
// Load: saturation with wrk (HTTP/1.1, TCP; 50 keep-alive connections; each measured run follows 1 s
// of the same load, unmeasured) and h2load (10 connections ×
// 10 streams), and a fixed 1,000 req/s from an open-loop client (proxy-load.ts) for latency.
// CPU per request is user+system time of both sidecar processes over a run (/proc/PID/stat) divided
// by the requests of that run: the steadiest figure on a shared 2-vCPU machine. RSS is VmRSS, idle
// after warm-up and the largest sample (every 100 ms) under load. Exits non-zero when a target is
// missed. `npm run bench:proxy [-- --repeats N] [-- --sat-seconds S] [-- --rate-seconds S]
// [-- --only h1,tcp,h2,resilience,traffic] [-- --node-app] [-- --cpu-prof DIR] [-- --sigil-proxy PATH] [-- --no-floor]
// [-- --pipelining DEPTH[xCONNECTIONS]]
// [-- --fault-rate R] [-- --fault-seconds S] [-- --max-load CORES] [-- --retries N] [-- --peers LIST]`:
// each repeat of a scenario is load-gated (proxy-repeats.ts): taken with more than --max-load cores
// (default 0.25) of other processes' CPU on the machine, it is no figure; the bench waits up to 30 s for
// quiet and takes it again, at most --retries times (default 3), then counts it invalid. Figures are
// medians and ranges of valid repeats, each with "valid N of M, other load …"; a scenario with no valid
// repeat gives no figure and misses its checks. At 1,000 req/s each sidecar's own CPU per request is
// reported too (client and server apart), against Istio's published 200 µs per sidecar.
// --cpu-prof profiles both Sigil sidecars (and skews their CPU figures); --sigil-proxy runs another
// build's bin/sigil-proxy (a patched checkout) in the same harness, to measure a change against
// HAProxy. A fourth pair, the Node floor (node-floor-proxy.ts: the recommended Node design with no
// policy, metrics, logs or identity checks), runs interleaved too unless --no-floor: its ratios to
// HAProxy say what this design reaches on the day, Sigil's say what it reaches with its features on.
// --peers LIST (default haproxy,nginx,caddy; HAProxy always runs, as the reference): mTLS sidecar
// pairs of nginx 1.22 (h1, tcp, h2; a second C proxy) and Caddy 2.6 (h1 only; Go, GOMAXPROCS=1),
// from Debian's packages, configured like HAProxy's and interleaved with the other targets
// (proxy-peers.ts); their ratios to HAProxy are printed and written to RESULTS.md as information.
// `resilience` (proxy-resilience.ts, Sigil only, run first): the CPU that upstream services with
// retries, budget, outlier detection and two endpoints add on the happy path, and success and
// amplification against an app failing 30% and 100% of requests (--fault-rate/--fault-seconds).
// `traffic` (proxy-traffic.ts, Sigil only): the CPU that 50 routes with a 90/10 split, and tracing at
// 1% and 100%, add per request. `sweep` (proxy-rate-sweep.ts, not run by default): HTTP/1.1 latency
// against offered rate, direct and through both pairs, for bench/latency-vs-rate.svg. --results FILE
// writes every figure and the sweep's curves for bench/RESULTS.md (results.ts, `npm run bench`).
// This file orchestrates; the flags and --help are proxy-flags.ts, the scenarios' ports
// proxy-scenarios.ts, the tables printed at the end (per scenario, and memory) proxy-tables.ts.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../src/spiffe/clock.js';
import { openBenchScope, runBench } from './bench-scope.js';
import { monotonicUs, type ProfilePhase, summarizeCpuProfiles } from './cpu-profile-summary.js';
import { drawPorts } from './port-pool.js';
import { parseFlags, USAGE } from './proxy-flags.js';
import { haproxyInboundConfig, haproxyOutboundConfig } from './proxy-haproxy.js';
// A value import of the load client's script is safe: its top level runs only under IPC (a forked child).
import { LOAD_CLIENT_HOST } from './proxy-load.js';
import {
  cpuMsOf,
  cpuOf,
  getOnce,
  getOnceH2,
  H2LOAD_CONNECTIONS,
  H2LOAD_STREAMS,
  LoadClient,
  memMbOf,
  PRIMING_S,
  RATE_PER_S,
  RATE_WARMUP_MS,
  RssSampler,
  runH2load,
  runWrk,
  type SatResult,
  startMachineLoad,
  WARMUP_S,
  WRK_CONNECTIONS,
} from './proxy-measure.js';
import type { PairScenarioEnv } from './proxy-pair-runs.js';
import {
  ensurePeerTools,
  PEER_LABELS,
  PEER_NOTES,
  PEER_SCENARIOS,
  type PeerName,
  type PeerPair,
  peerVersion,
  startPeerPair,
} from './proxy-peers.js';
import { runRateSweep, sweepEstimateS } from './proxy-rate-sweep.js';
import { type GatedRepeat, runGated, validRuns } from './proxy-repeats.js';
import { type Check, fmt, log, machineLoadLine, printVerdicts } from './proxy-report.js';
import { RESILIENCE_PORTS, resilienceEstimateS, runResilienceScenario } from './proxy-resilience.js';
import type { RateResult, RunResult, ScenarioKey, TargetName } from './proxy-scenario-figures.js';
import { benchScenarios, type Scenario } from './proxy-scenarios.js';
import {
  allowPolicy,
  type BenchPipelining,
  dirFor,
  ensureTools,
  fetchSvidFiles,
  type PairPorts,
  sigilInboundConfig,
  sigilOutboundConfig,
  startApp,
  startHaproxy,
  startSidecar,
  toolVersion,
} from './proxy-setup.js';
import { ALL_TARGETS, reportMemory, reportScenario, type ScenarioRepeat } from './proxy-tables.js';
import { sidesOf } from './proxy-targets.js';
import { runTrafficScenario, TRAFFIC_PORTS, trafficEstimateS } from './proxy-traffic.js';
import { type Figure, type LatencyCurve, reportResults } from './results.js';
import { CLIENT_ID, CLIENT_UID, SERVER_ID, SERVER_UID, startSidecarIdentity } from './sidecar-identity.js';

const FLOOR_PROXY = fileURLToPath(new URL('./node-floor-proxy.js', import.meta.url));

const SETTLE_MS = 2_000;

/** The pairs --cpu-prof profiles, by their names in the profile's phases: the Node ones, side by side. */
const PROFILED: Partial<Record<TargetName, string>> = { sigil: 'Sigil', floor: 'the Node floor' };

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const flags = parseFlags(process.argv.slice(2));
  const startedMs = Date.now();
  const targets = (flags.floor ? 4 : 3) + flags.peers.length;
  const estimateS =
    flags.repeats *
      flags.only.length *
      targets *
      (PRIMING_S + flags.satSeconds + 0.4 + flags.rateSeconds + RATE_WARMUP_MS / 1_000 + 0.3) +
    flags.only.length * targets * (WARMUP_S + 0.3) +
    (flags.resilience ? resilienceEstimateS(flags) : 0) +
    (flags.traffic ? trafficEstimateS(flags) : 0) +
    (flags.sweep ? sweepEstimateS(3, flags.sweepSeconds, flags.sweepRates) : 0) +
    25;
  log(
    `bench:proxy — ${flags.only.length === 0 ? 'Sigil-only scenarios (resilience, traffic)' : `direct vs Sigil sidecar pair vs HAProxy sidecar pair${flags.floor ? ' vs Node floor pair' : ''}${flags.peers.map((p) => ` vs ${PEER_LABELS[p]} pair`).join('')}`}; ${flags.repeats} repeats, interleaved; ` +
      `about ${Math.ceil(estimateS / 60)} min, more when a busy machine makes repeats be taken again`,
  );
  ensureTools(log);
  await ensurePeerTools(flags.peers, log);

  const scope = openBenchScope('proxy', log);
  const { root, procs } = scope;
  try {
    // --- Identity: a server, an agent (join token), an entry per sidecar uid.
    const { server, agent } = await startSidecarIdentity(scope);
    const clientSvid = await fetchSvidFiles(CLIENT_UID, agent.socketPath, path.join(root, 'svid-client'));
    const serverSvid = await fetchSvidFiles(SERVER_UID, agent.socketPath, path.join(root, 'svid-server'));
    log(
      `identity: client sidecar uid ${CLIENT_UID} = ${clientSvid.spiffeId}, server sidecar uid ${SERVER_UID} = ${serverSvid.spiffeId}`,
    );

    // --- The app, then the two pairs.
    // Every port the bench binds, drawn at once so that none is handed out twice.
    const ports = await drawPorts(24 + 6 * flags.peers.length + RESILIENCE_PORTS + TRAFFIC_PORTS);
    const take = ports.take;
    const app = ports.app();
    const sigilPorts = ports.pair();
    const floorPorts = ports.pair();
    const haproxyPorts = ports.pair();
    const peerPorts = new Map(flags.peers.map((peer) => [peer, ports.pair()] as const));
    const targetNames = ALL_TARGETS.filter(
      (t) =>
        (t !== 'floor' || flags.floor) && (!(t in PEER_SCENARIOS) || flags.peers.includes(t as PeerName)),
    );
    const appProc = await startApp(root, app, flags.app);
    procs.push(appProc);
    const policyPath = path.join(root, 'policy.yaml');
    writeFileSync(policyPath, allowPolicy(CLIENT_ID), { mode: 0o644 });
    const scenarioEnv: PairScenarioEnv = {
      root,
      workloadApi: agent.socketPath,
      policyPath,
      serverId: SERVER_ID,
      clientUid: CLIENT_UID,
      serverUid: SERVER_UID,
      takePort: take,
      benchPids: [appProc.pid, server.child.pid!, agent.child.pid!],
      proxyBin: flags.proxyBin,
      repeats: flags.repeats,
      satSeconds: flags.satSeconds,
      rateSeconds: flags.rateSeconds,
    };
    const resilienceChecks = flags.resilience
      ? await runResilienceScenario({
          ...scenarioEnv,
          appPort: app.http,
          faultRatePerS: flags.faultRatePerS,
          faultSeconds: flags.faultSeconds,
        })
      : [];
    if (flags.traffic) resilienceChecks.push(...(await runTrafficScenario({ ...scenarioEnv, app })));
    if (flags.only.length === 0 && !flags.sweep) {
      reportResults(process.argv, { bench: 'proxy', figures: resilienceChecks });
      const failedCount = printVerdicts(resilienceChecks);
      log(
        `\n${failedCount === 0 ? 'all targets met' : `${failedCount} target(s) missed`} (${((Date.now() - startedMs) / 1_000).toFixed(0)} s)`,
      );
      return failedCount === 0 ? 0 : 1;
    }
    const profDirs = flags.cpuProfDir
      ? {
          out: path.join(flags.cpuProfDir, 'client-sidecar'),
          in: path.join(flags.cpuProfDir, 'server-sidecar'),
        }
      : undefined;
    if (profDirs) {
      mkdirSync(flags.cpuProfDir!, { recursive: true });
      for (const [dir, uid] of [
        [profDirs.out, CLIENT_UID],
        [profDirs.in, SERVER_UID],
      ] as const) {
        rmSync(dir, { recursive: true, force: true });
        dirFor(uid, dir);
      }
    }
    /** A Node sidecar pair, Sigil's or the floor's, each with an admin port of its own. */
    const workloadApi = agent.socketPath;
    const startNodePair = async (
      label: string,
      prefix: string,
      ports: PairPorts,
      proxyBin?: string,
      pipelining?: BenchPipelining,
    ) => {
      const inbound = await startSidecar({
        name: `${label} server sidecar`,
        uid: SERVER_UID,
        configPath: path.join(root, `${prefix}-inbound.yaml`),
        config: sigilInboundConfig(ports, app, workloadApi, take(), policyPath),
        cpuProfDir: profDirs?.in,
        proxyBin,
      });
      procs.push(inbound);
      const outbound = await startSidecar({
        name: `${label} client sidecar`,
        uid: CLIENT_UID,
        configPath: path.join(root, `${prefix}-outbound.yaml`),
        config: sigilOutboundConfig(ports, workloadApi, take(), SERVER_ID, pipelining),
        cpuProfDir: profDirs?.out,
        proxyBin,
      });
      procs.push(outbound);
      return { inbound, outbound };
    };
    const { inbound: sigilIn, outbound: sigilOut } = await startNodePair(
      'sigil',
      'sigil',
      sigilPorts,
      flags.proxyBin,
      flags.pipelining,
    );
    const floor = flags.floor
      ? await startNodePair('node floor', 'floor', floorPorts, FLOOR_PROXY)
      : undefined;
    const haproxyIn = await startHaproxy(
      'haproxy server sidecar',
      path.join(root, 'haproxy-inbound.cfg'),
      haproxyInboundConfig(haproxyPorts, app, serverSvid),
      [haproxyPorts.inHttp, haproxyPorts.inTcp, haproxyPorts.inH2],
    );
    procs.push(haproxyIn);
    const haproxyOut = await startHaproxy(
      'haproxy client sidecar',
      path.join(root, 'haproxy-outbound.cfg'),
      haproxyOutboundConfig(haproxyPorts, clientSvid),
      [haproxyPorts.outHttp, haproxyPorts.outTcp, haproxyPorts.outH2],
    );
    procs.push(haproxyOut);
    const peerPairs: PeerPair[] = [];
    for (const peer of flags.peers) {
      const pair = await startPeerPair(peer, {
        root,
        ports: peerPorts.get(peer)!,
        app,
        clientUid: CLIENT_UID,
        serverUid: SERVER_UID,
        clientSvid,
        serverSvid,
        clientId: CLIENT_ID,
      });
      procs.push(pair.inbound, pair.outbound);
      peerPairs.push(pair);
    }
    const pairOf = (peer: PeerName) => peerPairs.find((p) => p.name === peer);
    const sidecars = { sigilOut, sigilIn, haproxyOut, haproxyIn };
    /** Every sidecar whose memory is sampled: Sigil's, HAProxy's and the peers'. */
    const memProcs = [...Object.values(sidecars), ...peerPairs.flatMap((p) => [p.outbound, p.inbound])];
    if (flags.proxyBin) log(`sigil-proxy: ${flags.proxyBin} (--sigil-proxy), not this checkout's`);
    if (flags.pipelining)
      log(
        `sigil: HTTP/1.1 hop pipelined, depth ${flags.pipelining.depth}, connections ${flags.pipelining.connections ?? 'default'} (--pipelining)`,
      );
    const startMb = new Map(memProcs.map((p) => [p.pid, memMbOf(p.pid)] as const));
    /** Each pair's processes, client side first, then server side (proxy-targets.ts sidesOf). */
    const pairPids: Record<TargetName, number[]> = {
      direct: [],
      sigil: [sigilOut.pid, sigilIn.pid],
      floor: floor ? [floor.outbound.pid, floor.inbound.pid] : [],
      haproxy: [haproxyOut.pid, haproxyIn.pid],
      // One process each (nginx without a master, Caddy one Go process): all of a peer's CPU.
      nginx: pairOf('nginx') ? [pairOf('nginx')!.outbound.pid, pairOf('nginx')!.inbound.pid] : [],
      caddy: pairOf('caddy') ? [pairOf('caddy')!.outbound.pid, pairOf('caddy')!.inbound.pid] : [],
    };
    log(
      `app: ${flags.app === 'native' ? 'HAProxy responder (http-request return, 1 thread)' : 'node:http + node:http2'}, ` +
        `200 "ok"; ${toolVersion('haproxy')}; ${toolVersion('wrk')}; ${toolVersion('h2load')}; node ${process.version}`,
    );
    const peerNotes: string[] = [];
    for (const peer of flags.peers)
      peerNotes.push(`${PEER_LABELS[peer]} (${await peerVersion(peer)}): ${PEER_NOTES[peer]}`);
    peerNotes.push(
      'HAProxy (2.6): verifies both certificates against the bundle, and can match neither SPIFFE ID (no URI SAN fetch).',
    );
    for (const note of peerNotes) log(`peers: ${note}`);
    const allScenarios = benchScenarios(
      app,
      { sigil: sigilPorts, floor: floorPorts, haproxy: haproxyPorts },
      peerPorts,
    );
    const scenarios = allScenarios.filter((s) => flags.only.includes(s.key));
    /** The targets that run in scenario `s`, in the run's order. */
    const targetsOf = (s: Scenario, order: readonly TargetName[] = targetNames) =>
      order.filter((t) => s.ports[t] !== undefined);

    // --- Every path answers before anything is measured.
    for (const s of scenarios) {
      for (const target of targetsOf(s)) {
        // h1 twice: with wrk's Host and with the fixed-rate client's, so a proxy that routes by Host
        // (Caddy's site address once answered `Host: bench` itself) is caught before it is measured.
        const checks =
          s.rateProtocol === 'h2'
            ? [() => getOnceH2(s.ports[target]!)]
            : [() => getOnce(s.ports[target]!), () => getOnce(s.ports[target]!, LOAD_CLIENT_HOST)];
        for (const check of checks) {
          const got = await check().catch((err: Error) => `error: ${err.message}`);
          if (got !== '200 ok') throw new Error(`${s.key} via ${target} answered "${got}" instead of 200 ok`);
        }
      }
    }
    log(
      `check: every scenario answers 200 "ok" directly, through Sigil, HAProxy and the peers that take part`,
    );

    const saturate = async (s: Scenario, target: TargetName, seconds: number): Promise<SatResult> => {
      const pids = pairPids[target];
      const before = cpuOf(pids);
      const res = await (s.saturation === 'wrk' ? runWrk : runH2load)(s.ports[target]!, seconds);
      const after = cpuOf(pids);
      if (pids.length === 0) return { ...res, cpuMs: null, sysMs: null };
      const sysMs = after.sysMs - before.sysMs;
      return { ...res, cpuMs: after.userMs - before.userMs + sysMs, sysMs };
    };
    const loadClient = LoadClient.start();
    scope.clients.push(loadClient);
    const atRate = async (s: Scenario, target: TargetName): Promise<RateResult> => {
      const pids = pairPids[target];
      const sides = sidesOf(pids);
      let before = { client: 0, server: 0 };
      const load = await loadClient.run(
        {
          protocol: s.rateProtocol,
          port: s.ports[target]!,
          ratePerS: RATE_PER_S,
          warmupMs: RATE_WARMUP_MS,
          durationMs: flags.rateSeconds * 1_000,
        },
        () => {
          before = { client: cpuMsOf(sides.client), server: cpuMsOf(sides.server) };
        },
      );
      if (pids.length === 0) return { load, cpuMs: null, sideCpuMs: null };
      const sideCpuMs = {
        client: cpuMsOf(sides.client) - before.client,
        server: cpuMsOf(sides.server) - before.server,
      };
      return { load, cpuMs: sideCpuMs.client + sideCpuMs.server, sideCpuMs };
    };

    // --- Warm-up: JIT, TLS sessions, pools. Then idle memory.
    log(`warm-up: ${WARMUP_S} s saturated per scenario and target`);
    for (const s of scenarios) for (const target of targetsOf(s)) await saturate(s, target, WARMUP_S);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const idleMb = new Map<number, number>();
    for (const p of memProcs) idleMb.set(p.pid, memMbOf(p.pid));

    // --- Measured repeats, interleaved: per scenario every target, order rotated each repeat. Each
    // scenario of a repeat is load-gated as one unit (proxy-repeats.ts), so a kept repeat's ratios
    // compare targets measured under the same quiet.
    const gated = { h1: [], tcp: [], h2: [] } as Record<ScenarioKey, Array<GatedRepeat<ScenarioRepeat>>>;
    const phases: ProfilePhase[] = [];
    const sampler = new RssSampler(memProcs.map((p) => p.pid));
    sampler.start();
    const ourPids = [...procs.map((p) => p.pid), loadClient.pid, server.child.pid!, agent.child.pid!];
    const machineLoad = startMachineLoad(ourPids);
    const gateProbe = { startLoad: () => startMachineLoad(ourPids), clock: systemClock };
    /** Profile phases of repeat 1's first take only: a retake would count the same phase twice. */
    const profilePhase = (rep: number, name: string, startUs: number) => {
      if (rep === 0 && !phases.some((p) => p.name === name))
        phases.push({ name, startUs, endUs: monotonicUs() });
    };
    const takeScenario = async (s: Scenario, order: readonly TargetName[], rep: number) => {
      sampler.takeMax();
      const runs = { direct: {}, sigil: {}, floor: {}, haproxy: {}, nginx: {}, caddy: {} } as Record<
        TargetName,
        RunResult
      >;
      for (const target of targetsOf(s, order)) {
        await saturate(s, target, PRIMING_S);
        const t0 = monotonicUs();
        runs[target].sat = await saturate(s, target, flags.satSeconds);
        if (PROFILED[target])
          profilePhase(rep, `${s.key} saturated through ${PROFILED[target]} (repeat 1)`, t0);
      }
      for (const target of targetsOf(s, order)) {
        const t0 = monotonicUs();
        runs[target].rate = await atRate(s, target);
        if (PROFILED[target])
          profilePhase(rep, `${s.key} at 1,000 req/s through ${PROFILED[target]} (repeat 1)`, t0);
      }
      return { runs, loadMb: sampler.takeMax() };
    };
    try {
      for (let rep = 0; rep < flags.repeats; rep++) {
        const order = targetNames.map((_, i) => targetNames[(i + rep) % targetNames.length]!);
        for (const s of scenarios) {
          const label = `repeat ${rep + 1}/${flags.repeats} ${s.key.padEnd(3)}`;
          const taken = await runGated(label, () => takeScenario(s, order, rep), flags.gate, gateProbe, log);
          gated[s.key].push(taken);
          if (!taken.valid) continue;
          const { runs } = taken.value!;
          const sat = (t: TargetName) => fmt(runs[t].sat!.reqPerS);
          const p50 = (t: TargetName) => fmt(runs[t].rate!.load.p50Ms, 3);
          const cpu = (t: TargetName) => fmt((runs[t].sat!.cpuMs! * 1_000) / runs[t].sat!.requests);
          /** The floor's figure and the peers' that ran, after Sigil's. */
          const othersPart = (f: (t: TargetName) => string) =>
            (flags.floor ? `, floor ${f('floor')}` : '') +
            targetsOf(s, flags.peers)
              .map((t) => `, ${t} ${f(t)}`)
              .join('');
          log(
            `${label}: req/s direct ${sat('direct')}, sigil ${sat('sigil')}${othersPart(sat)}, haproxy ${sat('haproxy')}; ` +
              `CPU µs/req sigil ${cpu('sigil')}${othersPart(cpu)}, haproxy ${cpu('haproxy')}; ` +
              `p50 ms at 1k direct ${p50('direct')}, sigil ${p50('sigil')}${othersPart(p50)}, haproxy ${p50('haproxy')}; ` +
              `other load ${taken.loadsCores.at(-1)!.toFixed(2)} cores`,
          );
        }
      }
    } finally {
      sampler.stop();
    }
    const allGated = scenarios.flatMap((s) => gated[s.key]);
    const loadMb = validRuns(allGated).map((r) => r.loadMb);
    // Whatever else ran on the machine meanwhile (other builds, tests): the noise these figures carry.
    const backgroundCores = machineLoad();
    const peakMb = new Map(memProcs.map((p) => [p.pid, memMbOf(p.pid, 'VmHWM')] as const));
    let curves: LatencyCurve[] = [];
    if (flags.sweep) {
      log('');
      log(
        `sweep: HTTP/1.1 latency against offered rate, open loop, ${flags.sweepSeconds} s per rate and path`,
      );
      curves = await runRateSweep(
        loadClient,
        [
          { name: 'Sigil pair', port: sigilPorts.outHttp, isPair: true },
          { name: 'HAProxy pair', port: haproxyPorts.outHttp, isPair: true },
          { name: 'direct', port: app.http, isPair: false },
        ],
        flags.sweepSeconds,
        flags.sweepRates,
      );
    }

    // --- Report.
    const checks: Check[] = [];
    /** Figures without a target, for bench/RESULTS.md: what the targets read against. */
    const info: Figure[] = [];
    log('');
    log(
      `Medians of the valid ones of ${flags.repeats} interleaved repeats (load-gated: at most ${flags.gate.maxLoadCores} cores of other load, ${flags.gate.retries} retakes); ratio = Sigil ÷ HAProxy within each repeat, median (range). ` +
        `Saturation: ${flags.satSeconds} s after ${PRIMING_S} s unmeasured, wrk ${WRK_CONNECTIONS} connections / h2load ${H2LOAD_CONNECTIONS}×${H2LOAD_STREAMS} streams. ` +
        `Latency: open loop at ${fmt(RATE_PER_S)} req/s for ${flags.rateSeconds} s. CPU: both sidecars of a pair, user+system.`,
    );
    for (const s of scenarios) {
      const figures = reportScenario(
        s,
        gated[s.key],
        targetsOf(s),
        targetsOf(s, flags.peers) as PeerName[],
        flags.floor,
      );
      checks.push(...figures.checks);
      info.push(...figures.info);
    }
    const memory = reportMemory({ sidecars, peerPairs, startMb, idleMb, loadMb, peakMb, allGated });
    checks.push(...memory.checks);
    info.push(...memory.info);

    checks.push(...resilienceChecks);
    log('');
    printVerdicts(checks);
    const failed = checks.filter((c) => !c.pass);
    const mainChecks = checks.slice(0, checks.length - resilienceChecks.length);
    reportResults(process.argv, {
      bench: 'proxy',
      figures: [...mainChecks, ...info, ...resilienceChecks],
      backgroundCores,
      curves,
      notes: [
        `Saturation: wrk, ${WRK_CONNECTIONS} connections (h2: h2load ${H2LOAD_CONNECTIONS}×${H2LOAD_STREAMS} streams), ${flags.satSeconds} s per run; latency: open loop at ${fmt(RATE_PER_S)} req/s for ${flags.rateSeconds} s; ${flags.repeats} interleaved repeats. CPU: both sidecars of a pair, user+system.`,
        `${toolVersion('haproxy')}; ${toolVersion('wrk')}; ${toolVersion('h2load')}.`,
        ...peerNotes,
      ],
    });
    if (flags.peers.length > 0) {
      log('');
      for (const note of peerNotes) log(`peers: ${note}`);
    }
    log(`\n${machineLoadLine(backgroundCores)}`);
    if (flags.cpuProfDir) log('note: the sidecars ran under --cpu-prof, which inflates their CPU figures.');
    log(
      `\n${failed.length === 0 ? 'all targets met' : `${failed.length} target(s) missed`} ` +
        `(${((Date.now() - startedMs) / 1_000).toFixed(0)} s)`,
    );

    if (profDirs) {
      await scope.cleanup();
      for (const [label, dir] of [
        ['client sidecar (outbound)', profDirs.out],
        ['server sidecar (inbound)', profDirs.in],
      ] as const) {
        log('');
        log(`=== CPU profiles of the ${label}: Sigil's${flags.floor ? ' and the Node floor' : ''}`);
        summarizeCpuProfiles(dir, phases, (line) => log(line.replace('cpu profile of the agent', 'profile')));
      }
    }
    return failed.length === 0 ? 0 : 1;
  } finally {
    await scope.cleanup();
  }
}

runBench('proxy', main);
