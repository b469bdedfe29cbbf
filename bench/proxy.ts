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
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../src/spiffe/clock.js';
import { openBenchScope, runBench } from './bench-scope.js';
import { monotonicUs, type ProfilePhase, summarizeCpuProfiles } from './cpu-profile-summary.js';
import { drawPorts } from './port-pool.js';
import type { LoadResult } from './proxy-load.js';
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
import { peerFigures, peerMemoryFigures } from './proxy-peer-figures.js';
import {
  ensurePeerTools,
  PEER_LABELS,
  PEER_NOTES,
  PEER_SCENARIOS,
  type PeerName,
  type PeerPair,
  parsePeers,
  peerVersion,
  startPeerPair,
} from './proxy-peers.js';
import { QUICK_SWEEP_RATES, runRateSweep, SWEEP_RATES, sweepEstimateS } from './proxy-rate-sweep.js';
import {
  DEFAULT_MAX_LOAD_CORES,
  DEFAULT_RETRIES,
  type GatedRepeat,
  type GateOptions,
  gateLine,
  runGated,
  summarizeGate,
  validRuns,
} from './proxy-repeats.js';
import {
  type Check,
  fmt,
  fmtRatio,
  log,
  machineLoadLine,
  median,
  printVerdicts,
  Table,
} from './proxy-report.js';
import { RESILIENCE_PORTS, resilienceEstimateS, runResilienceScenario } from './proxy-resilience.js';
import { FAULT_RATE_PER_S } from './proxy-resilience-faults.js';
import {
  errorsOf,
  type RateResult,
  type RunResult,
  type ScenarioKey,
  type ScenarioRuns,
  satCpu,
  scenarioFigures,
  type TargetName,
  throughput,
} from './proxy-scenario-figures.js';
import {
  allowPolicy,
  type BenchPipelining,
  type BenchProc,
  dirFor,
  ensureTools,
  fetchSvidFiles,
  haproxyInboundConfig,
  haproxyOutboundConfig,
  type PairPorts,
  sigilInboundConfig,
  sigilOutboundConfig,
  startApp,
  startHaproxy,
  startSidecar,
  toolVersion,
} from './proxy-setup.js';
import { rateSideCpuUs } from './proxy-sidecar-figures.js';
import { ISTIO_REFERENCE, SIDE_LABEL, SIDES, SOURCES, sidesOf, TARGETS } from './proxy-targets.js';
import { runTrafficScenario, TRAFFIC_PORTS, trafficEstimateS } from './proxy-traffic.js';
import { type Figure, type LatencyCurve, rangeOf, reportResults } from './results.js';
import { CLIENT_ID, CLIENT_UID, SERVER_ID, SERVER_UID, startSidecarIdentity } from './sidecar-identity.js';

const FLOOR_PROXY = fileURLToPath(new URL('./node-floor-proxy.js', import.meta.url));

const SETTLE_MS = 2_000;

/** `1.23x`, or `–` when a side has no figure (no valid repeat). */
const fmtTimes = (ratio: number) => (Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '–');

const ALL_TARGETS: readonly TargetName[] = ['direct', 'sigil', 'floor', 'haproxy', 'nginx', 'caddy'];
/** The pairs --cpu-prof profiles, by their names in the profile's phases: the Node ones, side by side. */
const PROFILED: Partial<Record<TargetName, string>> = { sigil: 'Sigil', floor: 'the Node floor' };
interface Scenario {
  readonly key: ScenarioKey;
  readonly title: string;
  readonly saturation: 'wrk' | 'h2load';
  readonly rateProtocol: 'h1' | 'h2';
  /** Only the targets that take part in the scenario (Caddy has no TCP pipe). */
  readonly ports: Partial<Record<TargetName, number>>;
}

interface Flags {
  readonly repeats: number;
  readonly satSeconds: number;
  readonly rateSeconds: number;
  readonly only: readonly ScenarioKey[];
  /** `resilience` was among --only (it is by default). */
  readonly resilience: boolean;
  /** `traffic` (proxy-traffic.ts: routes and tracing) was among --only (it is by default). */
  readonly traffic: boolean;
  /** `sweep` was among --only (not by default): latency against rate, proxy-rate-sweep.ts. */
  readonly sweep: boolean;
  readonly sweepSeconds: number;
  /** The sweep's rates: SWEEP_RATES, or with --sweep-seconds 1 (a smoke run) QUICK_SWEEP_RATES. */
  readonly sweepRates: readonly number[];
  readonly faultRatePerS: number;
  readonly faultSeconds: number;
  readonly app: 'native' | 'node';
  readonly cpuProfDir: string | undefined;
  readonly proxyBin: string | undefined;
  readonly floor: boolean;
  /** --max-load and --retries: the load gate of every repeat (proxy-repeats.ts). */
  readonly gate: GateOptions;
  /** Sigil's outbound HTTP/1.1 service pipelined (--pipelining DEPTH[xCONNECTIONS]); undefined: off. */
  readonly pipelining: BenchPipelining | undefined;
  /** The peers besides HAProxy (--peers). */
  readonly peers: readonly PeerName[];
}

/** `8` or `10x5`: depth, then optionally pipelined connections per endpoint. */
function parsePipelining(raw: string | undefined): BenchPipelining | undefined {
  if (raw === undefined) return undefined;
  const match = /^(\d+)(?:x(\d+))?$/.exec(raw);
  if (match === null) throw new Error(`--pipelining: expected DEPTH or DEPTHxCONNECTIONS, got ${raw}`);
  return { depth: Number(match[1]), connections: match[2] === undefined ? undefined : Number(match[2]) };
}

function parseFlags(argv: readonly string[]): Flags {
  const value = (name: string): string | undefined => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const number = (name: string, fallback: number): number => {
    const raw = value(name);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: expected a positive number, got ${raw}`);
    return n;
  };
  const atLeastZero = (name: string, fallback: number): number => {
    const raw = value(name);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: expected a number ≥ 0, got ${raw}`);
    return n;
  };
  const keys = (value('--only') ?? 'h1,tcp,h2,resilience,traffic').split(',').map((s) => s.trim());
  for (const key of keys)
    if (!['h1', 'tcp', 'h2', 'resilience', 'traffic', 'sweep'].includes(key))
      throw new Error(`--only: unknown scenario ${key}`);
  const only = keys.filter((key) => !['resilience', 'traffic', 'sweep'].includes(key)) as ScenarioKey[];
  const sweepSeconds = number('--sweep-seconds', 3);
  const prof = value('--cpu-prof');
  const peers = parsePeers(value('--peers'));
  return {
    repeats: Math.round(number('--repeats', 3)),
    satSeconds: Math.round(number('--sat-seconds', 4)),
    rateSeconds: number('--rate-seconds', 4),
    only,
    resilience: keys.includes('resilience'),
    traffic: keys.includes('traffic'),
    sweep: keys.includes('sweep'),
    sweepSeconds,
    sweepRates: sweepSeconds < 2 ? QUICK_SWEEP_RATES : SWEEP_RATES,
    // Why this default rate: FAULT_RATE_PER_S in proxy-resilience-faults.ts.
    faultRatePerS: number('--fault-rate', FAULT_RATE_PER_S),
    faultSeconds: number('--fault-seconds', 5),
    app: argv.includes('--node-app') ? 'node' : 'native',
    cpuProfDir: prof === undefined ? undefined : path.resolve(prof),
    proxyBin: value('--sigil-proxy') === undefined ? undefined : path.resolve(value('--sigil-proxy')!),
    floor: !argv.includes('--no-floor'),
    gate: {
      maxLoadCores: atLeastZero('--max-load', DEFAULT_MAX_LOAD_CORES),
      retries: Math.round(atLeastZero('--retries', DEFAULT_RETRIES)),
    },
    pipelining: parsePipelining(value('--pipelining')),
    // Sigil-only runs (resilience, traffic) start no peer: nothing to install or interleave.
    peers: only.length === 0 ? [] : peers,
  };
}

// ---------------------------------------------------------------------------------------------
// Main

interface Sidecars {
  readonly sigilOut: BenchProc;
  readonly sigilIn: BenchProc;
  readonly haproxyOut: BenchProc;
  readonly haproxyIn: BenchProc;
}

const USAGE = `Usage: npm run bench:proxy [-- FLAGS]

Sigil's sidecar pair against HAProxy's (and the Node floor), interleaved; scenarios h1, tcp, h2
(against HAProxy), resilience and traffic (Sigil only). Exit status 1 when a target is missed.

Flags:
  --only LIST          scenarios, comma-separated (default h1,tcp,h2,resilience,traffic; also sweep)
  --repeats N          interleaved repeats (default 3)
  --sat-seconds S      each saturated run (default 4)
  --rate-seconds S     each run at 1,000 req/s (default 4)
  --fault-rate R       resilience: the load on the failing app, req/s (default 50)
  --fault-seconds S    resilience: each fault run (default 5)
  --sweep-seconds S    sweep: each rate (default 3; under 2, three rates only)
  --results FILE       write the figures as JSON for bench/RESULTS.md (npm run bench)
  --node-app           a node:http app instead of HAProxy's responder
  --cpu-prof DIR       V8 CPU profiles of the h1/tcp/h2 Sigil sidecars into DIR
  --sigil-proxy PATH   another build's bin/sigil-proxy
  --no-floor           leave the Node floor pair out
  --max-load CORES     a repeat taken with more than CORES of other processes' CPU is no figure: wait
                       (up to 30 s) for quiet and take it again (default ${DEFAULT_MAX_LOAD_CORES})
  --retries N          retakes of such a repeat before it is counted invalid (default ${DEFAULT_RETRIES})
  --pipelining D[xC]   Sigil's HTTP/1.1 hop pipelined D deep on C connections (opt-in; default off)
  --peers LIST         mTLS sidecar pairs to place Sigil among (default haproxy,nginx,caddy; HAProxy
                       always runs: every ratio divides by it; nginx: h1, tcp, h2; Caddy: h1 only)
  -h, --help           this help
`;

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
    const sidecars: Sidecars = { sigilOut, sigilIn, haproxyOut, haproxyIn };
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
    /** A peer's port in a scenario, when it takes part in it. */
    const peerPort = (peer: PeerName, key: ScenarioKey, port: (p: PairPorts) => number) =>
      flags.peers.includes(peer) && PEER_SCENARIOS[peer].includes(key)
        ? port(peerPorts.get(peer)!)
        : undefined;
    const peerPortsOf = (key: ScenarioKey, port: (p: PairPorts) => number) => ({
      nginx: peerPort('nginx', key, port),
      caddy: peerPort('caddy', key, port),
    });

    const allScenarios: Scenario[] = [
      {
        key: 'h1',
        title: 'HTTP/1.1 (Sigil http L7 vs HAProxy mode http)',
        saturation: 'wrk',
        rateProtocol: 'h1',
        ports: {
          direct: app.http,
          sigil: sigilPorts.outHttp,
          floor: floorPorts.outHttp,
          haproxy: haproxyPorts.outHttp,
          ...peerPortsOf('h1', (p) => p.outHttp),
        },
      },
      {
        key: 'tcp',
        title: 'opaque TCP carrying HTTP/1.1 (Sigil tcp vs HAProxy mode tcp)',
        saturation: 'wrk',
        rateProtocol: 'h1',
        ports: {
          direct: app.http,
          sigil: sigilPorts.outTcp,
          floor: floorPorts.outTcp,
          haproxy: haproxyPorts.outTcp,
          ...peerPortsOf('tcp', (p) => p.outTcp),
        },
      },
      {
        key: 'h2',
        title: 'HTTP/2 app traffic, h2c (Sigil http2 pipe vs HAProxy mode tcp)',
        saturation: 'h2load',
        rateProtocol: 'h2',
        ports: {
          direct: app.h2c,
          sigil: sigilPorts.outH2,
          floor: floorPorts.outH2,
          haproxy: haproxyPorts.outH2,
          ...peerPortsOf('h2', (p) => p.outH2),
        },
      },
    ];
    const scenarios = allScenarios.filter((s) => flags.only.includes(s.key));
    /** The targets that run in scenario `s`, in the run's order. */
    const targetsOf = (s: Scenario, order: readonly TargetName[] = targetNames) =>
      order.filter((t) => s.ports[t] !== undefined);

    // --- Every path answers before anything is measured.
    for (const s of scenarios) {
      for (const target of targetsOf(s)) {
        const got = await (s.rateProtocol === 'h2' ? getOnceH2 : getOnce)(s.ports[target]!).catch(
          (err: Error) => `error: ${err.message}`,
        );
        if (got !== '200 ok') throw new Error(`${s.key} via ${target} answered "${got}" instead of 200 ok`);
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
    interface ScenarioRepeat {
      readonly runs: Record<TargetName, RunResult>;
      /** Largest RSS sample per sidecar pid during the take. */
      readonly loadMb: Map<number, number>;
    }
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
      /** This scenario's valid repeats: the only runs any figure below is taken from. */
      const results = validRuns(gated[s.key]).map((r) => r.runs);
      const gate = summarizeGate(gated[s.key]);
      const ran = targetsOf(s);
      const peers = targetsOf(s, flags.peers) as PeerName[];
      const per = (target: TargetName, f: (r: RunResult) => number) =>
        ran.includes(target) ? results.map((rep) => f(rep[target])) : [];
      const ratioOf = (target: TargetName) => (f: (r: RunResult) => number) =>
        per(target, f).map((v, i) => v / f(results[i]!.haproxy));
      const satSys = (r: RunResult) => (r.sat!.sysMs! * 1_000) / r.sat!.requests;
      const rateCpu = (r: RunResult) =>
        (r.rate!.cpuMs! * 1_000) / (r.rate!.load.completed + r.rate!.load.errors);
      const added = (f: (l: LoadResult) => number) => (rep: Record<TargetName, RunResult>, t: TargetName) =>
        f(rep[t].rate!.load) - f(rep.direct.rate!.load);
      const addedP50 = added((l) => l.p50Ms);
      const addedP99 = added((l) => l.p99Ms);
      /** The columns after HAProxy's: each peer's figure; after Sigil's ratio, each peer's ratio. */
      const table = new Table([
        '',
        'direct',
        'Sigil',
        'floor',
        'HAProxy',
        ...peers.map((t) => PEER_LABELS[t]),
        'Sigil/HAProxy',
        '(range)',
        'floor/HAProxy',
        ...peers.map((t) => `${PEER_LABELS[t]}/HAProxy`),
      ]);
      /** Each target's runs of one measure (direct only where it means something). */
      const valuesOf = (f: (r: RunResult) => number, withDirect = false) =>
        Object.fromEntries(
          ALL_TARGETS.map((t) => [t, t === 'direct' && !withDirect ? [] : per(t, f)]),
        ) as Record<TargetName, number[]>;
      const ratiosOf = (f: (r: RunResult) => number) =>
        Object.fromEntries(ALL_TARGETS.map((t) => [t, ratioOf(t)(f)])) as Partial<
          Record<TargetName, number[]>
        >;
      /** One row: each target's median, then Sigil's ratio to HAProxy (median, range), the floor's and the peers'. */
      const row = (
        name: string,
        values: Partial<Record<TargetName, number[]>>,
        ratios: Partial<Record<TargetName, number[]>> | null,
        digits = 0,
      ) => {
        const cell = (t: TargetName) => (values[t]?.length ? fmt(median(values[t]), digits) : '');
        const ratioCell = (t: TargetName) => (ratios?.[t]?.length ? fmtRatio(ratios[t]).median : '');
        const sigil = ratios?.sigil ? fmtRatio(ratios.sigil) : null;
        table.add([
          name,
          cell('direct'),
          cell('sigil'),
          cell('floor'),
          cell('haproxy'),
          ...peers.map(cell),
          sigil?.median ?? '',
          sigil?.spread ?? '',
          ratioCell('floor'),
          ...peers.map(ratioCell),
        ]);
      };
      row('throughput saturated (req/s)', valuesOf(throughput, true), ratiosOf(throughput));
      row('CPU µs/request saturated (pair)', valuesOf(satCpu), ratiosOf(satCpu), 1);
      row('  of which kernel (system time)', valuesOf(satSys), ratiosOf(satSys), 1);
      row('CPU µs/request at 1k req/s (pair)', valuesOf(rateCpu), ratiosOf(rateCpu), 1);
      for (const side of SIDES) {
        const f = rateSideCpuUs(side);
        row(`  ${SIDE_LABEL[side]}`, valuesOf(f), ratiosOf(f), 1);
      }
      for (const [name, f] of [
        ['p50', (l: LoadResult) => l.p50Ms],
        ['p99', (l: LoadResult) => l.p99Ms],
      ] as const) {
        row(
          `${name} latency at 1k req/s (ms)`,
          valuesOf((r) => f(r.rate!.load), true),
          null,
          3,
        );
        const addedOf = name === 'p50' ? addedP50 : addedP99;
        const addedBy = (t: TargetName) => (ran.includes(t) ? results.map((rep) => addedOf(rep, t)) : []);
        const haproxyAdded = addedBy('haproxy');
        // A ratio of near-zero additions says nothing.
        const overHaproxy = (t: TargetName) =>
          addedBy(t).map((v, i) => (haproxyAdded[i]! > 0.005 ? v / haproxyAdded[i]! : Number.NaN));
        row(
          `  added ${name} over direct (ms)`,
          Object.fromEntries(ALL_TARGETS.filter((t) => t !== 'direct').map((t) => [t, addedBy(t)])),
          Object.fromEntries(['sigil', ...peers].map((t) => [t, overHaproxy(t as TargetName)])),
          3,
        );
      }
      const runs: ScenarioRuns = {
        key: s.key,
        repeats: results,
        hasFloor: flags.floor,
        gate,
      };
      const errorsCell = (t: TargetName) => (ran.includes(t) ? fmt(errorsOf(runs, t)) : '');
      table.add([
        'failed requests (valid repeats)',
        errorsCell('direct'),
        errorsCell('sigil'),
        errorsCell('floor'),
        errorsCell('haproxy'),
        ...peers.map(errorsCell),
        '',
        '',
        '',
        ...peers.map(() => ''),
      ]);
      log('');
      log(`${s.title}: ${gateLine(gate)}`);
      table.print();
      log(`reference at 1k req/s, per sidecar: ${ISTIO_REFERENCE}`);

      const figures = scenarioFigures(runs);
      checks.push(...figures.checks);
      info.push(...figures.info, ...peerFigures(runs, peers));
    }

    log('');
    log(
      'Memory per sidecar, VmRSS in MB (10^6 bytes): at start (no traffic yet); idle = after warm-up, settled; ' +
        'load = largest 100 ms sample of a valid repeat of a scenario, median; peak = VmHWM',
    );
    /** Memory under load is read from every scenario's valid repeats alike. */
    const memGate = gateLine(summarizeGate(allGated));
    const mem = new Table([
      '',
      'Sigil start',
      'HAProxy start',
      'Sigil idle',
      'HAProxy idle',
      'ratio',
      'Sigil load',
      'HAProxy load',
      'ratio',
      'Sigil peak',
      'HAProxy peak',
      ...peerPairs.flatMap((p) => [`${PEER_LABELS[p.name]} idle`, `${PEER_LABELS[p.name]} load`]),
    ]);
    const loadMbOf = (pid: number) => median(loadMb.map((m) => m.get(pid) ?? Number.NaN));
    for (const [label, sigil, haproxy, side] of [
      ['client sidecar (outbound)', sidecars.sigilOut, sidecars.haproxyOut, 'outbound'],
      ['server sidecar (inbound)', sidecars.sigilIn, sidecars.haproxyIn, 'inbound'],
    ] as const) {
      const idleS = idleMb.get(sigil.pid)!;
      const idleH = idleMb.get(haproxy.pid)!;
      const loadS = median(loadMb.map((m) => m.get(sigil.pid) ?? Number.NaN));
      const loadH = median(loadMb.map((m) => m.get(haproxy.pid) ?? Number.NaN));
      mem.add([
        label,
        fmt(startMb.get(sigil.pid)!, 1),
        fmt(startMb.get(haproxy.pid)!, 1),
        fmt(idleS, 1),
        fmt(idleH, 1),
        fmtTimes(idleS / idleH),
        fmt(loadS, 1),
        fmt(loadH, 1),
        fmtTimes(loadS / loadH),
        fmt(peakMb.get(sigil.pid)!, 1),
        fmt(peakMb.get(haproxy.pid)!, 1),
        ...peerPairs.flatMap((p) => [fmt(idleMb.get(p[side].pid)!, 1), fmt(loadMbOf(p[side].pid), 1)]),
      ]);
      info.push(
        ...peerMemoryFigures(
          label,
          peerPairs.map((p) => ({
            name: p.name,
            idleMb: idleMb.get(p[side].pid)!,
            loadMb: loadMbOf(p[side].pid),
          })),
          { idleMb: idleH, loadMb: loadH },
        ),
      );
      checks.push({
        name: `RSS idle, Sigil ${label}`,
        value: `${fmt(idleS, 1)} MB`,
        target: `≤ ${TARGETS.rssIdleMb} MB`,
        source: SOURCES.rssIdleMb,
        reference: `HAProxy ${fmt(idleH, 1)} MB; Sigil at start ${fmt(startMb.get(sigil.pid)!, 1)} MB`,
        pass: idleS <= TARGETS.rssIdleMb,
      });
      const anyValid = loadMb.length > 0;
      checks.push({
        name: `RSS under load, Sigil ${label}`,
        value: anyValid ? `${fmt(loadS, 1)} MB` : memGate,
        repeats: anyValid ? memGate : undefined,
        range: rangeOf(
          loadMb.map((m) => m.get(sigil.pid) ?? Number.NaN),
          (v) => `${fmt(v, 1)} MB`,
        ),
        target: `≤ ${TARGETS.rssLoadMb} MB`,
        source: SOURCES.rssLoadMb,
        reference: anyValid ? `HAProxy ${fmt(loadH, 1)} MB` : undefined,
        pass: anyValid && loadS <= TARGETS.rssLoadMb,
      });
    }
    mem.print();

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
