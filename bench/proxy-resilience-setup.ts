// The moving parts of bench:proxy's resilience scenario (proxy-resilience.ts): sidecar configs that
// send to upstream *services* (the `services:` section of the proxy config, issue 11) rather than to
// one `upstream`, an inbound config with one listener per endpoint, and the failing backend
// (proxy-fault-backend.ts) driven over IPC. Only what differs from the defaults is written, so the
// "defaults" runs measure what an operator gets without tuning.
import { fileURLToPath } from 'node:url';
import type { FaultCommand, FaultStats } from './proxy-fault-backend.js';
import { type BenchProc, spawnTracked, waitUntil } from './proxy-setup.js';

const FAULT_BACKEND_SCRIPT = fileURLToPath(new URL('./proxy-fault-backend.js', import.meta.url));
const IPC_TIMEOUT_MS = 10_000;

/** How a benchmarked service departs from the defaults of the config spec. */
export interface BenchServiceSettings {
  /** `retries.max_attempts`: 1 turns retries off. Absent: the default (3 tries, default budget). */
  readonly maxAttempts?: number;
  /**
   * false: `outlier_detection: { consecutive_failures: 0, failure_rate: 0 }`, i.e. never ejects.
   * Absent or true: the defaults (5 consecutive failures, 50% over 30 s).
   */
  readonly outlierDetection?: boolean;
}

/** One outbound `http` listener and the service of the same name it sends to. */
export interface BenchService {
  readonly name: string;
  readonly listenPort: number;
  /** Ports of the server sidecar's inbound listeners, one endpoint each (127.0.0.1). */
  readonly endpointPorts: readonly number[];
  readonly settings: BenchServiceSettings;
}

/** One inbound `http` listener of the server sidecar and the app port it forwards to. */
export interface BenchInbound {
  readonly name: string;
  readonly listenPort: number;
  readonly appPort: number;
}

/** The client sidecar: one outbound listener per service, every endpoint checked for `serverId`. */
export function sigilServicesOutboundConfig(
  services: readonly BenchService[],
  workloadApi: string,
  adminPort: number,
  serverId: string,
): string {
  const listeners = services.map(
    (s) => `  - { name: ${s.name}, listen: "127.0.0.1:${s.listenPort}", protocol: http, service: ${s.name} }`,
  );
  const blocks = services.map((s) => {
    const lines = [
      `  - name: ${s.name}`,
      `    server_ids: ["${serverId}"]`,
      `    endpoints: [${s.endpointPorts.map((p) => `{ address: "127.0.0.1:${p}" }`).join(', ')}]`,
    ];
    if (s.settings.maxAttempts !== undefined)
      lines.push(`    retries: { max_attempts: ${s.settings.maxAttempts} }`);
    if (s.settings.outlierDetection === false)
      lines.push('    outlier_detection: { consecutive_failures: 0, failure_rate: 0 }');
    return lines.join('\n');
  });
  return `workload_api: unix://${workloadApi}
admin: 127.0.0.1:${adminPort}
outbound:
${listeners.join('\n')}
services:
${blocks.join('\n')}
`;
}

/** The server sidecar: strict mTLS `http` listeners, each in front of an app port, under `policyPath`. */
export function sigilEndpointsInboundConfig(
  inbound: readonly BenchInbound[],
  workloadApi: string,
  adminPort: number,
  policyPath: string,
): string {
  const listeners = inbound.map(
    (l) =>
      `  - { name: ${l.name}, listen: "127.0.0.1:${l.listenPort}", protocol: http, app: "127.0.0.1:${l.appPort}", mode: strict }`,
  );
  return `workload_api: unix://${workloadApi}
admin: 127.0.0.1:${adminPort}
policy_file: ${policyPath}
inbound:
${listeners.join('\n')}
`;
}

/** The failing app (proxy-fault-backend.ts) as a child process with a typed IPC channel. */
export class FaultBackend {
  private constructor(
    readonly proc: BenchProc,
    readonly port: number,
  ) {}

  static async start(port: number): Promise<FaultBackend> {
    const proc = spawnTracked('fault backend', process.execPath, [FAULT_BACKEND_SCRIPT, String(port)], {
      ipc: true,
    });
    await waitUntil(() => proc.logs().includes('listening'), 'fault backend listening', proc);
    return new FaultBackend(proc, port);
  }

  /** Starts a run: fail `failPercent` % of the requests from now on, counters reset. */
  async set(failPercent: number): Promise<void> {
    await this.ask({ type: 'set', failPercent });
  }

  async stats(): Promise<FaultStats> {
    return (await this.ask({ type: 'stats' })) as FaultStats;
  }

  private ask(command: FaultCommand): Promise<unknown> {
    const child = this.proc.child;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.off('message', onMessage);
        reject(new Error(`fault backend: no answer to ${command.type} in ${IPC_TIMEOUT_MS} ms`));
      }, IPC_TIMEOUT_MS);
      const onMessage = (message: { type: string }) => {
        if (message.type !== command.type) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(message);
      };
      child.on('message', onMessage);
      child.send(command);
    });
  }
}

/** What the client sidecar's /metrics say about one service: its own count of what it did. */
export interface SidecarServiceCounts {
  readonly requests: number;
  /** Retries by reason (`status-503`, `reset`, `connect`…). */
  readonly retries: ReadonlyMap<string, number>;
  readonly budgetExhausted: number;
  readonly ejections: number;
}

const SAMPLE = /^(sigil_proxy_upstream_\w+)\{([^}]*)\} (\S+)$/;

/** Scrapes the admin port's Prometheus text for the `sigil_proxy_upstream_*` counters of `service`. */
export async function sidecarServiceCounts(
  adminPort: number,
  service: string,
): Promise<SidecarServiceCounts> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  if (!res.ok) throw new Error(`GET /metrics on the client sidecar's admin port: ${res.status}`);
  let requests = 0;
  let budgetExhausted = 0;
  let ejections = 0;
  const retries = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const sample = SAMPLE.exec(line);
    if (!sample) continue;
    const labels = new Map([...sample[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!] as const));
    if (labels.get('service') !== service) continue;
    const value = Number(sample[3]);
    if (sample[1] === 'sigil_proxy_upstream_requests_total') requests += value;
    else if (sample[1] === 'sigil_proxy_upstream_retry_budget_exhausted_total') budgetExhausted += value;
    else if (sample[1] === 'sigil_proxy_upstream_ejections_total') ejections += value;
    else if (sample[1] === 'sigil_proxy_upstream_retries_total') {
      const reason = labels.get('reason') ?? '?';
      retries.set(reason, (retries.get(reason) ?? 0) + value);
    }
  }
  return { requests, retries, budgetExhausted, ejections };
}
