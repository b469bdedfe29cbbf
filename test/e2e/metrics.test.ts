// Metrics end to end: a real server and agent serving GET /metrics on metrics_bind, and a sidecar's
// admin /metrics. A workload's fetches must move the agent's series; every metric name the shipped
// dashboards and the Prometheus config use must exist in what the real processes serve; and the
// agent's log lines carry one `component` key each.
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  type AgentProcess,
  asWorkload,
  freePort,
  makeSharedDir,
  waitFor,
  watchAsWorkload,
} from '../support/agent-harness.js';
import { REPO_ROOT, type ServerProcess, startServerProcess } from '../support/harness.js';
import { startAgentWithEntries } from '../support/registration.js';
import { type SidecarProcess, startSidecarProcess, stopSidecars } from '../support/sidecar-harness.js';

const WORKLOAD_UID = 1;
const PROXY_UID = 65534;
/** A uid no entry selects: its calls are refused. */
const STRANGER_UID = 4242;
const COMPONENTS = ['server', 'agent', 'proxy'] as const;
type Component = (typeof COMPONENTS)[number];

let root: { dir: string; cleanup(): void };
let server: ServerProcess;
let agent: AgentProcess;
let proxy: SidecarProcess;
const metricsPorts = {} as Record<Component, number>;

beforeAll(async () => {
  root = makeSharedDir('sigil-metrics-e2e-');
  server = await startServerProcess({
    dataDir: path.join(root.dir, 'server'),
    extraArgs: ['--metrics-bind', '127.0.0.1:0'],
  });
  metricsPorts.server = startedRecord(server.logs(), 'Sigil server started').metricsAddress.port;
  // One connection per uid: a second one while the first is busy is refused, and counted.
  const agentConfig = path.join(root.dir, 'agent.yaml');
  writeFileSync(agentConfig, 'workload_api:\n  max_connections_per_uid: 1\n');
  agent = await startAgentWithEntries(
    server,
    root.dir,
    [
      ['workload', WORKLOAD_UID],
      ['proxy', PROXY_UID],
    ],
    // Debug: the manager's per-SVID lines show the log bindings too.
    { agentArgs: ['--config', agentConfig, '--metrics-bind', '127.0.0.1:0', '--log-level', 'debug'] },
  );
  metricsPorts.agent = startedRecord(agent.logs(), 'Sigil agent started').metricsAddress.port;
  metricsPorts.proxy = await freePort();
  proxy = await startSidecarProcess(
    PROXY_UID,
    root.dir,
    'proxy',
    `workload_api: unix://${agent.socketPath}
admin: 127.0.0.1:${metricsPorts.proxy}
inbound:
  - { name: api, listen: "127.0.0.1:${await freePort()}", protocol: http, app: "127.0.0.1:${await freePort()}", mode: strict }
`,
  );
}, 120_000);

afterAll(async () => {
  await stopSidecars([proxy]);
  await agent?.stop();
  await server?.stop();
  root?.cleanup();
});

describe('agent metrics (metrics_bind)', () => {
  it("moves with a workload's fetches: SVIDs minted, calls by RPC and code, sync and attestation", async () => {
    const before = await scrape(metricsPorts.agent);
    expect((await asWorkload(WORKLOAD_UID, agent, 'fetch', 'x509')).code).toBe(0);
    const jwt = await asWorkload(WORKLOAD_UID, agent, 'fetch', 'jwt', '--audience', 'metrics-e2e');
    expect(jwt.code).toBe(0);
    expect((await asWorkload(STRANGER_UID, agent, 'fetch', 'x509')).code).not.toBe(0);
    const after = await scrape(metricsPorts.agent);
    const delta = (name: string, labels: Record<string, string> = {}) =>
      sum(after, name, labels) - sum(before, name, labels);

    expect(sum(after, 'sigil_agent_attestation_attempts_total', { outcome: 'success' })).toBe(1);
    const attestedAt = sum(after, 'sigil_agent_attestation_last_success_timestamp_seconds');
    expect(Math.abs(attestedAt - Date.now() / 1000)).toBeLessThan(120);
    expect(sum(after, 'sigil_agent_sync_connected')).toBe(1);
    expect(sum(after, 'sigil_agent_sync_revision')).toBeGreaterThan(0);
    expect(sum(after, 'sigil_agent_sync_lag_seconds')).toBe(0);
    expect(sum(after, 'sigil_agent_sync_updates_total')).toBeGreaterThan(0);
    // The workload's and the sidecar's X.509-SVIDs, and the one JWT-SVID asked for.
    expect(sum(after, 'sigil_agent_svids_minted_total', { kind: 'x509' })).toBeGreaterThanOrEqual(2);
    expect(delta('sigil_agent_svids_minted_total', { kind: 'jwt' })).toBe(1);
    expect(sum(after, 'sigil_agent_x509_svids_cached')).toBeGreaterThanOrEqual(2);
    expect(delta('sigil_agent_workload_api_calls_total', { rpc: 'FetchJWTSVID', code: 'OK' })).toBe(1);
    expect(
      delta('sigil_agent_workload_api_calls_total', { rpc: 'FetchX509SVID', code: 'PERMISSION_DENIED' }),
    ).toBe(1);
    expect(delta('sigil_agent_workload_api_calls_total', { rpc: 'FetchX509SVID' })).toBe(2);
    expect(after).toContain('# TYPE sigil_agent_process_cpu_seconds_total counter');
  });

  it('counts a watching workload in the open-streams gauge until it leaves', async () => {
    const open = async () =>
      sum(await scrape(metricsPorts.agent), 'sigil_agent_workload_api_streams_open', {
        rpc: 'FetchX509SVID',
      });
    // The sidecar holds its own stream; the CLI fetches above have closed theirs.
    await waitFor(
      async () => (await open()) === 1,
      10_000,
      () => 'streams_open never settled at 1',
    );
    const watch = watchAsWorkload(WORKLOAD_UID, agent);
    try {
      await watch.waitFor((u) => u.svids.length > 0);
      expect(await open()).toBe(2);
      // The watch holds uid 1's one connection, busy: another call from uid 1 is refused at accept.
      const refusals = () => scrape(metricsPorts.agent);
      expect(sum(await refusals(), 'sigil_agent_workload_api_refusals_total', { reason: 'uid-cap' })).toBe(0);
      expect((await asWorkload(WORKLOAD_UID, agent, 'fetch', 'x509')).code).not.toBe(0);
      expect(sum(await refusals(), 'sigil_agent_workload_api_refusals_total', { reason: 'uid-cap' })).toBe(1);
    } finally {
      await watch.stop();
    }
    await waitFor(
      async () => (await open()) === 1,
      10_000,
      () => 'the watch stream was not counted closed',
    );
  });

  it('serves nothing but /metrics on metrics_bind', async () => {
    for (const urlPath of ['/', '/healthz', '/debug/explain?pid=1']) {
      expect((await get(metricsPorts.agent, urlPath)).status).toBe(404);
    }
    expect((await get(metricsPorts.server, '/readyz')).status).toBe(404);
  });

  it('writes one component key per log line', () => {
    const lines = agent
      .logs()
      .split('\n')
      .filter((line) => line.startsWith('{'));
    const repeated = lines.filter((line) => (line.match(/"component":/g) ?? []).length > 1);
    expect(repeated).toEqual([]);
    // The manager's lines, which used to say component twice, are among them.
    expect(lines.some((line) => line.includes('"component":"manager"'))).toBe(true);
  });
});

describe('server metrics (metrics_bind)', () => {
  it("serves the server's series, the agent's SVIDs counted, and the process metrics named once", async () => {
    const text = await scrape(metricsPorts.server);
    expect(sum(text, 'sigil_server_svids_issued_total', { type: 'x509', caller: 'agent' })).toBeGreaterThan(
      0,
    );
    expect(text).toContain('# TYPE sigil_server_process_cpu_seconds_total counter');
    for (const component of COMPONENTS) {
      expect(await scrape(metricsPorts[component])).not.toMatch(/process_process/);
    }
  });
});

describe('dashboards and the Prometheus config', () => {
  const dashboards = COMPONENTS.map((component) => ({
    component,
    file: `deploy/dashboards/sigil-${component}.json`,
    model: JSON.parse(
      readFileSync(path.join(REPO_ROOT, 'deploy/dashboards', `sigil-${component}.json`), 'utf8'),
    ),
  }));
  const prometheus = parseYaml(
    readFileSync(path.join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8'),
  ) as {
    rule_files?: string[];
    scrape_configs: Array<{
      job_name: string;
      metrics_path?: string;
      scheme?: string;
      static_configs: Array<{ targets: string[] }>;
    }>;
  };
  /** The alerting rules prometheus.yml loads (paths relative to it). */
  const rules = (prometheus.rule_files ?? []).map((file) => {
    const text = readFileSync(path.join(REPO_ROOT, 'deploy/prometheus', file), 'utf8');
    return { file, text, model: parseYaml(text) as { groups: Array<{ name: string; rules: unknown[] }> } };
  });
  const jobOf = (component: Component) =>
    prometheus.scrape_configs.find((j) => j.job_name === `sigil-${component}`);

  it('are valid Grafana models: uid, title, panels with ids, positions and targets', () => {
    const uids = new Set<string>();
    for (const { file, model } of dashboards) {
      expect(typeof model.uid, file).toBe('string');
      expect(model.uid.length, file).toBeGreaterThan(0);
      uids.add(model.uid);
      expect(typeof model.title, file).toBe('string');
      expect(typeof model.schemaVersion, file).toBe('number');
      expect(Array.isArray(model.templating?.list), file).toBe(true);
      expect(Array.isArray(model.panels) && model.panels.length > 0, file).toBe(true);
      const ids = new Set<number>();
      for (const panel of model.panels) {
        const where = `${file} panel ${JSON.stringify(panel.title)}`;
        expect(Number.isInteger(panel.id), where).toBe(true);
        ids.add(panel.id);
        expect(typeof panel.type, where).toBe('string');
        expect(typeof panel.title, where).toBe('string');
        for (const key of ['h', 'w', 'x', 'y'])
          expect(Number.isInteger(panel.gridPos?.[key]), where).toBe(true);
        expect(panel.gridPos.x + panel.gridPos.w, where).toBeLessThanOrEqual(24);
        expect(panel.datasource?.type, where).toBe('prometheus');
        expect(Array.isArray(panel.targets) && panel.targets.length > 0, where).toBe(true);
        const refIds = panel.targets.map((t: { refId: string }) => t.refId);
        expect(new Set(refIds).size, where).toBe(refIds.length);
        for (const target of panel.targets) {
          expect(typeof target.expr, where).toBe('string');
          expect(target.expr, where).toMatch(/sigil_/);
        }
      }
      expect(ids.size, `${file}: panel ids must be unique`).toBe(model.panels.length);
    }
    expect(uids.size).toBe(dashboards.length);
  });

  it('scrape each component where its deploy example config serves /metrics', () => {
    const exampleConfig = (name: string) =>
      parseYaml(readFileSync(path.join(REPO_ROOT, 'deploy', name), 'utf8')) as Record<string, string>;
    const portOf = (hostPort: string) => Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));
    const expected: Record<Component, number> = {
      server: portOf(exampleConfig('server.example.yaml').metrics_bind!),
      agent: portOf(exampleConfig('agent.example.yaml').metrics_bind!),
      proxy: portOf(exampleConfig('proxy.example.yaml').admin!),
    };
    expect(expected).toEqual({ server: 9988, agent: 9989, proxy: 15000 });
    for (const component of COMPONENTS) {
      const job = jobOf(component);
      expect(job, `job sigil-${component}`).toBeDefined();
      expect(job!.metrics_path ?? '/metrics').toBe('/metrics');
      expect(job!.scheme ?? 'http').toBe('http');
      const targets = job!.static_configs.flatMap((c) => c.targets);
      expect(targets.length).toBeGreaterThan(0);
      for (const target of targets) expect(portOf(target), target).toBe(expected[component]);
    }
    // Each dashboard's instance picker asks for its own job.
    for (const { component, model } of dashboards) {
      const queries = model.templating.list.map((v: { query?: unknown }) => JSON.stringify(v.query ?? ''));
      expect(queries.join(' ')).toContain(`job=\\"sigil-${component}\\"`);
    }
  });

  it('load alerting rules of the shape Prometheus reads: groups of named rules with an expression', () => {
    expect(rules.length).toBeGreaterThan(0);
    const allowed = ['alert', 'expr', 'for', 'labels', 'annotations'];
    for (const { file, model } of rules) {
      expect(model.groups.length, file).toBeGreaterThan(0);
      for (const group of model.groups) {
        expect(typeof group.name, file).toBe('string');
        for (const rule of group.rules as Array<Record<string, unknown>>) {
          expect(
            Object.keys(rule).filter((k) => !allowed.includes(k)),
            `${file} ${group.name}`,
          ).toEqual([]);
          expect(typeof rule.alert, `${file} ${group.name}`).toBe('string');
          expect(rule.expr, `${file} ${rule.alert}`).toMatch(/sigil_/);
        }
      }
    }
  });

  it('name only metrics the real server, agent and proxy serve (histograms through _bucket, _sum, _count)', async () => {
    const prometheusText = readFileSync(path.join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8');
    const missing: string[] = [];
    let checked = 0;
    for (const component of COMPONENTS) {
      const job = jobOf(component)!;
      const types = typesOf(await scrape(metricsPorts[component], job.metrics_path ?? '/metrics'));
      const model = dashboards.find((d) => d.component === component)!.model;
      const texts = [
        ...model.panels.flatMap((p: { targets: Array<{ expr: string }> }) => p.targets.map((t) => t.expr)),
        ...model.templating.list.map((v: { query?: unknown }) => JSON.stringify(v.query ?? '')),
        prometheusText,
        ...rules.map((r) => r.text),
      ];
      const names = new Set(
        texts.flatMap((t) => t.match(new RegExp(`\\bsigil_${component}_[a-z0-9_]+`, 'g')) ?? []),
      );
      expect(names.size, `sigil-${component}.json names no sigil_${component}_ metric`).toBeGreaterThan(5);
      for (const name of names) {
        checked++;
        if (!served(types, name)) missing.push(`${component}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
    expect(checked).toBeGreaterThan(40);
  });
});

/** Series name -> type, from the exposition's `# TYPE` lines (present even before a first sample). */
function typesOf(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(match[1]!, match[2]!);
  return types;
}

function served(types: Map<string, string>, name: string): boolean {
  if (types.has(name)) return true;
  const histogram = /^(.*)_(bucket|sum|count)$/.exec(name);
  return histogram !== null && types.get(histogram[1]!) === 'histogram';
}

/** The sum of `name`'s samples whose labels include `labels`. */
function sum(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name} `) || line.startsWith(`${name}{`))) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

function startedRecord(logs: string, message: string): { metricsAddress: { host: string; port: number } } {
  const line = logs.split('\n').find((l) => l.startsWith('{') && l.includes(`"msg":"${message}"`));
  if (!line) throw new Error(`no "${message}" line in:\n${logs}`);
  return JSON.parse(line);
}

async function scrape(port: number, urlPath = '/metrics'): Promise<string> {
  const reply = await get(port, urlPath);
  if (reply.status !== 200) throw new Error(`GET ${urlPath} on ${port}: ${reply.status} ${reply.body}`);
  return reply.body;
}

function get(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}
