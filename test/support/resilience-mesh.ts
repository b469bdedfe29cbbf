// A mesh for the sidecar resilience tests: a server, an agent, fault backends (fault-backend.ts),
// and sidecars as real processes under their own uids, each with the SVID `<td>/<name>-proxy`.
// A sidecar fronts its `apps` with one inbound listener each (an endpoint of some service), and
// may have outbound listeners whose YAML is built once the sidecars started before it are up, so
// it can name their inbound addresses. Listeners bind port 0; ports come from the started log line.
// Each test file that calls useResilienceMesh() gets its own mesh; its tests share it, in order.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { type AgentProcess, makeSharedDir } from './agent-harness.js';
import { type FaultBackend, startFaultBackend } from './fault-backend.js';
import { type ServerProcess, startServerProcess } from './harness.js';
import { startAgentWithEntries, TD } from './registration.js';
import { type SidecarProcess, startSidecarProcess, stopSidecars } from './sidecar-harness.js';

export { TD };

/** What the outbound YAML of a sidecar may refer to: everything started before it. */
export interface MeshView {
  /** HOST:PORT of the inbound listener in front of app `app`. */
  inbound(app: string): string;
  /** The SPIFFE ID of sidecar `sidecar`. */
  id(sidecar: string): string;
}

export interface SidecarSpec {
  /** Also the SVID's path, `<td>/<name>-proxy`, and the config file's name. */
  readonly name: string;
  readonly uid: number;
  /** Fault backends started for this sidecar, each behind an inbound listener named after it. */
  readonly apps?: readonly string[];
  /** More keys of the inbound listener in front of an app, by app name (`rate_limit`…). */
  readonly inbound?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** The `outbound:` and `services:` part of its config (YAML, top level). */
  readonly outbound?: (mesh: MeshView) => string;
  /** Node flags for its process (sidecar-harness.ts). */
  readonly nodeArgs?: readonly string[];
}

export interface ResilienceMesh extends MeshView {
  /** The fault backend named `name`. */
  app(name: string): FaultBackend;
  /** The bound port of listener `listener` on sidecar `sidecar`. */
  port(sidecar: string, listener: string): number;
  adminPort(sidecar: string): number;
  sidecar(name: string): SidecarProcess;
  /** Rewrites sidecar `sidecar`'s config with `outbound` in place of its outbound part (hot reload). */
  rewriteOutbound(sidecar: string, outbound: string): void;
  /** The YAML its outbound builder produced at start. */
  outboundYaml(sidecar: string): string;
}

interface Running {
  readonly process: SidecarProcess;
  readonly ports: Record<string, number>;
  readonly adminPort: number;
  readonly head: string;
  readonly outbound: string;
}

/** Starts the mesh before the file's tests (sidecars in `specs` order) and stops it after. */
export function useResilienceMesh(specs: readonly SidecarSpec[]): ResilienceMesh {
  let root: { dir: string; cleanup(): void } | undefined;
  let server: ServerProcess | undefined;
  let agent: AgentProcess | undefined;
  const apps = new Map<string, FaultBackend>();
  const running = new Map<string, Running>();
  const inboundOf = new Map<string, string>();

  const must = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`resilience mesh: no ${what}`);
    return value;
  };
  const mesh: ResilienceMesh = {
    inbound: (app) => must(inboundOf.get(app), `inbound listener for app ${app} (started yet?)`),
    id: (sidecar) => `${TD}/${sidecar}-proxy`,
    app: (name) => must(apps.get(name), `app ${name}`),
    port: (sidecar, listener) =>
      must(must(running.get(sidecar), `sidecar ${sidecar}`).ports[listener], `listener ${listener}`),
    adminPort: (sidecar) => must(running.get(sidecar), `sidecar ${sidecar}`).adminPort,
    sidecar: (name) => must(running.get(name), `sidecar ${name}`).process,
    outboundYaml: (sidecar) => must(running.get(sidecar), `sidecar ${sidecar}`).outbound,
    rewriteOutbound(sidecar, outbound) {
      const r = must(running.get(sidecar), `sidecar ${sidecar}`);
      writeFileSync(path.join(must(root, 'root').dir, `${sidecar}.yaml`), r.head + outbound);
    },
  };

  const startSidecar = async (spec: SidecarSpec): Promise<void> => {
    const inbound = (spec.apps ?? [])
      .map((app) => {
        // YAML is a superset of JSON: each extra key's value is written as JSON.
        const extra = Object.entries(spec.inbound?.[app] ?? {})
          .map(([key, value]) => `, ${key}: ${JSON.stringify(value)}`)
          .join('');
        return `  - { name: ${app}, listen: "127.0.0.1:0", protocol: http, app: "127.0.0.1:${mesh.app(app).port}"${extra} }\n`;
      })
      .join('');
    const head = `workload_api: unix://${must(agent, 'agent').socketPath}
admin: "127.0.0.1:0"
${inbound ? `inbound:\n${inbound}` : ''}`;
    const outbound = spec.outbound?.(mesh) ?? '';
    const sidecar = await startSidecarProcess(
      spec.uid,
      must(root, 'root').dir,
      spec.name,
      head + outbound,
      spec.nodeArgs,
    );
    const started = sidecar.lines('Sigil proxy started')[0] as {
      adminPort: number;
      listeners: Record<string, number>;
    };
    running.set(spec.name, {
      process: sidecar,
      ports: started.listeners,
      adminPort: started.adminPort,
      head,
      outbound,
    });
    for (const app of spec.apps ?? []) inboundOf.set(app, `127.0.0.1:${started.listeners[app]}`);
  };

  beforeAll(async () => {
    root = makeSharedDir('sigil-resilience-');
    server = await startServerProcess({ dataDir: path.join(root.dir, 'server') });
    agent = await startAgentWithEntries(
      server,
      root.dir,
      specs.map((spec) => [`${spec.name}-proxy`, spec.uid] as const),
    );
    for (const spec of specs) for (const app of spec.apps ?? []) apps.set(app, await startFaultBackend(app));
    // Sidecars with only inbound listeners need nothing from each other: start them together.
    const leaves = specs.filter((s) => s.outbound === undefined);
    await Promise.all(leaves.map(startSidecar));
    for (const spec of specs) if (spec.outbound !== undefined) await startSidecar(spec);
  }, 120_000);

  afterAll(async () => {
    await stopSidecars([...running.values()].map((r) => r.process));
    for (const app of apps.values()) await app.close();
    await agent?.stop();
    await server?.stop();
    root?.cleanup();
  });

  return mesh;
}

/** One upstream service in a test's config: snake_case keys as in the file, endpoints by address. */
export interface ServiceSpec {
  readonly name: string;
  readonly server_ids: readonly string[];
  readonly endpoints: ReadonlyArray<
    string | { readonly address: string; readonly server_ids: readonly string[] }
  >;
  readonly [setting: string]: unknown;
}

/**
 * The `outbound:` and `services:` YAML for `services`, one HTTP listener per service named after
 * it, on port 0 (a rewrite with the same list keeps the listeners, so only services change).
 * YAML is a superset of JSON, so the values are written as JSON.
 */
export function servicesYaml(services: readonly ServiceSpec[]): string {
  const outbound = services.map((s) => ({
    name: s.name,
    listen: '127.0.0.1:0',
    protocol: 'http',
    service: s.name,
  }));
  const list = services.map((s) => ({
    ...s,
    endpoints: s.endpoints.map((e) => (typeof e === 'string' ? { address: e } : e)),
  }));
  return `outbound: ${JSON.stringify(outbound)}\nservices: ${JSON.stringify(list)}\n`;
}

/** Outlier detection off (0 turns each trigger off): for tests that measure retries alone. */
export const NO_EJECTION = { consecutive_failures: 0, failure_rate: 0 } as const;
