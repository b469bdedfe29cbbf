// Checks that the Kubernetes manifests fit what the binaries actually parse: each embedded config
// (ConfigMap data) is loaded with the real server, agent and proxy config parsers, then every path
// it names must lie under a volumeMount of its container (from the right volume), every port must
// match the containerPort, Service and probe that use it, and args must be flags the CLI knows.
// Returns problems as lines, so a test can also show that a broken copy is caught.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { loadAgentConfig } from '../../src/agent/config.js';
import { loadProxyConfig } from '../../src/proxy/config.js';
import { parsePolicyFile } from '../../src/proxy/policy/index.js';
import { checkServerConfig } from '../../src/server/config.js';
import { REPO_ROOT } from '../support/harness.js';

// biome-ignore lint/suspicious/noExplicitAny: manifests are YAML walked by known paths; a wrong path fails the test anyway
export type Json = Record<string, any>;
export const MANIFEST_DIR = path.join(REPO_ROOT, 'deploy', 'kubernetes');

export function loadManifests(dir = MANIFEST_DIR): Json[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => d.toJS() as Json));
}

/** `<bin> run --help` of the compiled CLI: the flags `args` may use. */
function runHelp(bin: string): string {
  let help = helpTexts.get(bin);
  if (help === undefined) {
    help = execFileSync(process.execPath, [path.join(REPO_ROOT, 'bin', bin), 'run', '--help'], {
      encoding: 'utf8',
    });
    helpTexts.set(bin, help);
  }
  return help;
}
const helpTexts = new Map<string, string>();

export function checkWiring(docs: Json[], scratchDir: string): string[] {
  const problems: string[] = [];
  const fail = (msg: string): undefined => {
    problems.push(msg);
  };
  const find = (kind: string, name: string): Json => {
    const doc = docs.find((d) => d.kind === kind && d.metadata?.name === name);
    if (!doc) throw new Error(`no ${kind} ${name} in the manifests`);
    return doc;
  };
  const podSpec = (w: Json): Json => w.spec.template.spec;
  const containerOf = (w: Json, name: string): Json => {
    const spec = podSpec(w);
    const c = [...(spec.initContainers ?? []), ...spec.containers].find((x: Json) => x.name === name);
    if (!c) throw new Error(`no container ${name} in ${w.kind} ${w.metadata.name}`);
    return c;
  };
  /** The volume mounted deepest above `file` in container `c`, with the path below the mount. */
  const mountOf = (w: Json, c: Json, file: string) => {
    const mounts = ((c.volumeMounts ?? []) as Json[])
      .filter((m) => file === m.mountPath || file.startsWith(`${m.mountPath}/`))
      .sort((a, b) => b.mountPath.length - a.mountPath.length);
    const mount = mounts[0];
    if (!mount) return undefined;
    const volume = (podSpec(w).volumes as Json[]).find((v) => v.name === mount.name);
    return { mount, volume: volume ?? {}, rest: path.relative(mount.mountPath, file) };
  };
  const under = (w: Json, c: Json, what: string, file: string, volumeKind?: string) => {
    const m = mountOf(w, c, file);
    if (!m) return fail(`${c.name}: ${what} ${file} is under no volumeMount`);
    if (volumeKind && !(volumeKind in m.volume))
      fail(`${c.name}: ${what} ${file} is on volume ${m.mount.name}, not a ${volumeKind} volume`);
    // Written by this container; a client may connect to a socket on a read-only mount (sockets are exempt from EROFS).
    if (m.mount.readOnly && /^(socket_path|admin_socket|data_dir)$/.test(what))
      fail(`${c.name}: ${what} ${file} is on a read-only mount`);
    return m;
  };
  /** The text of a file mounted from a ConfigMap, and the ConfigMap key it comes from. */
  const configMapFile = (w: Json, c: Json, file: string): string => {
    const m = under(w, c, 'config file', file, 'configMap');
    const cm = m && docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === m.volume.configMap?.name);
    const text = cm?.data?.[m!.rest];
    if (typeof text !== 'string')
      throw new Error(`${c.name}: ${file} is no key of a ConfigMap in the manifests`);
    return text;
  };
  const port = (c: Json, name: string): number | undefined =>
    (c.ports as Json[] | undefined)?.find((p) => p.name === name)?.containerPort;
  const expectPort = (what: string, actual: unknown, expected: number | undefined) => {
    if (actual !== expected) fail(`${what} is ${String(actual)}, the config says ${String(expected)}`);
  };
  const servicePort = (svc: Json, target: string) =>
    (svc.spec.ports as Json[]).find((p) => p.targetPort === target);
  /** `--config FILE` of a `<bin> run` container; every other flag must be one `run --help` lists. */
  const runConfig = (c: Json, bin: string): string => {
    if (JSON.stringify(c.command) !== JSON.stringify([bin])) fail(`${c.name}: command is not ["${bin}"]`);
    if (c.args?.[0] !== 'run') fail(`${c.name}: args do not start with "run"`);
    const help = runHelp(bin);
    for (const flag of (c.args as string[]).filter((a) => a.startsWith('--'))) {
      if (!help.includes(`${flag} `)) fail(`${c.name}: ${bin} run has no flag ${flag}`);
    }
    return c.args[c.args.indexOf('--config') + 1];
  };
  const probeSocket = (c: Json, probe: string): string | undefined => {
    const cmd = c[probe]?.exec?.command as string[] | undefined;
    return cmd?.[cmd.indexOf('--admin-socket') + 1];
  };

  // Server.
  const sts = find('StatefulSet', 'sigil-server');
  const server = containerOf(sts, 'sigil-server');
  const serverRaw = parseYaml(configMapFile(sts, server, runConfig(server, 'sigil-server'))) as Json;
  const serverConfig = checkServerConfig(withScratchKeys(serverRaw, scratchDir), 'server ConfigMap', '/', {
    kubernetesApiServer: 'https://10.96.0.1:443',
  });
  under(sts, server, 'data_dir', serverConfig.dataDir);
  under(sts, server, 'admin_socket', serverConfig.adminSocket, 'emptyDir');
  for (const file of Object.values(serverRaw.node_attestors.k8s_sat.clusters as Json).flatMap(
    (c: Json) => c.service_account_key_files,
  ))
    under(sts, server, 'k8s_sat key file', file, 'configMap');
  const notifier = serverConfig.notifiers.k8sBundle!;
  under(sts, server, 'notifier token_path', notifier.tokenPath, 'projected');
  under(sts, server, 'notifier ca_path', notifier.caPath, 'projected');
  for (const probe of ['livenessProbe', 'readinessProbe']) {
    if (probeSocket(server, probe) !== serverConfig.adminSocket)
      fail(`sigil-server: ${probe} uses another admin socket`);
  }
  const serverSvc = find('Service', sts.spec.serviceName);
  expectPort('sigil-server containerPort agent-api', port(server, 'agent-api'), serverConfig.bind.port);
  expectPort(
    'Service sigil-server agent-api port',
    servicePort(serverSvc, 'agent-api')?.port,
    serverConfig.bind.port,
  );
  const serverMetrics = serverConfig.metricsBind?.port;
  expectPort('sigil-server containerPort metrics', port(server, 'metrics'), serverMetrics);
  expectPort('Service sigil-server metrics port', servicePort(serverSvc, 'metrics')?.port, serverMetrics);
  expectPort(
    'sigil-server scrape annotation',
    Number(sts.spec.template.metadata.annotations['prometheus.io/port']),
    serverMetrics,
  );
  const role = find('Role', 'sigil-server-bundle');
  const verbs = (role.rules as Json[])
    .filter(
      (r) =>
        r.resources.includes('configmaps') &&
        (!r.resourceNames || r.resourceNames.includes(notifier.configMap)),
    )
    .flatMap((r) => r.verbs);
  for (const verb of ['create', 'get', 'patch'])
    if (!verbs.includes(verb)) fail(`Role sigil-server-bundle lacks ${verb} on configmaps`);
  if (role.metadata.namespace !== notifier.namespace)
    fail('Role sigil-server-bundle is not in the notifier namespace');
  const binding = find('RoleBinding', 'sigil-server-bundle');
  if (binding.subjects[0].name !== podSpec(sts).serviceAccountName)
    fail('RoleBinding names another ServiceAccount');

  // Agent.
  const ds = find('DaemonSet', 'sigil-agent');
  const agent = containerOf(ds, 'sigil-agent');
  const agentRaw = parseYaml(configMapFile(ds, agent, runConfig(agent, 'sigil-agent'))) as Json;
  const agentConfig = loadAgentConfig({ config: scratchFile(scratchDir, 'agent.yaml', agentRaw) }, '/');
  under(ds, agent, 'socket_path', agentConfig.socketPath, 'hostPath');
  under(ds, agent, 'admin_socket', agentConfig.adminSocket, 'hostPath');
  under(ds, agent, 'data_dir', agentConfig.dataDir);
  const bundleMount = under(ds, agent, 'trust_bundle_path', agentConfig.trustBundlePath!, 'configMap');
  if (
    bundleMount?.volume.configMap?.name !== notifier.configMap ||
    bundleMount.rest !== notifier.configMapKey
  )
    fail(
      `sigil-agent: trust_bundle_path is not the notifier's ConfigMap ${notifier.configMap} key ${notifier.configMapKey}`,
    );
  if (ds.metadata.namespace !== notifier.namespace)
    fail('the agent cannot mount a ConfigMap of the notifier namespace');
  if (probeSocket(agent, 'livenessProbe') !== agentConfig.adminSocket)
    fail('sigil-agent: livenessProbe uses another admin socket');
  const [host, serverPort] = agentConfig.serverAddresses[0]!.split(':');
  if (host !== `${serverSvc.metadata.name}.${serverSvc.metadata.namespace}.svc`)
    fail(`sigil-agent: server_address ${host} is not the Service`);
  expectPort('sigil-agent server_address port', Number(serverPort), serverConfig.bind.port);
  const agentMetrics = agentConfig.metricsBind?.port;
  expectPort('sigil-agent containerPort metrics', port(agent, 'metrics'), agentMetrics);
  expectPort(
    'sigil-agent scrape annotation',
    Number(ds.spec.template.metadata.annotations['prometheus.io/port']),
    agentMetrics,
  );
  // k8s_sat: the cluster, audience, service account and token file must agree on both sides.
  const sat = agentConfig.nodeAttestor.config as Json;
  const cluster = serverRaw.node_attestors.k8s_sat.clusters[sat.cluster];
  if (!cluster) fail(`k8s_sat cluster ${sat.cluster} is not configured on the server`);
  const tokenMount = under(ds, agent, 'k8s_sat token_path', sat.token_path, 'projected');
  const projected = (tokenMount?.volume.projected?.sources as Json[] | undefined)?.find(
    (s) => s.serviceAccountToken?.path === tokenMount?.rest,
  )?.serviceAccountToken;
  if (projected?.audience !== (cluster?.audience ?? 'sigil-server'))
    fail('k8s_sat: token audience differs from the server');
  const agentSa = `${ds.metadata.namespace}:${podSpec(ds).serviceAccountName}`;
  if (cluster && !cluster.allowed_service_accounts.includes(agentSa))
    fail(`k8s_sat: ${agentSa} is not allowed`);
  if (agent.securityContext?.runAsUser !== 0)
    fail('sigil-agent must run as root: its socket dir is a root-owned hostPath');
  if (podSpec(ds).hostPID !== true) fail('sigil-agent needs hostPID to read callers in /proc');

  // The example app and its sidecar.
  const app = find('Deployment', 'greeter');
  const proxy = containerOf(app, 'sigil-proxy');
  if (!(podSpec(app).initContainers as Json[]).includes(proxy) || proxy.restartPolicy !== 'Always')
    fail('sigil-proxy is not a native sidecar (initContainers entry with restartPolicy: Always)');
  const proxyFile = runConfig(proxy, 'sigil-proxy');
  const proxyConfig = loadProxyConfig(
    scratchFile(scratchDir, 'proxy.yaml', parseYaml(configMapFile(app, proxy, proxyFile))),
  );
  const socket = proxyConfig.workloadApi.replace(/^unix:\/\//, '');
  const socketMount = under(app, proxy, 'workload_api socket', socket, 'hostPath');
  const agentRun = mountOf(ds, agent, agentConfig.socketPath);
  const onHost = (m: typeof agentRun) => m && path.join(m.volume.hostPath?.path ?? '', m.rest);
  if (socket !== agentConfig.socketPath || (agentRun && onHost(socketMount) !== onHost(agentRun)))
    fail(`sigil-proxy: workload_api ${socket} is not the agent's socket on the host`);
  if (proxyConfig.policyFile === null) fail('sigil-proxy: no policy_file');
  else parsePolicyFile(configMapFile(app, proxy, proxyConfig.policyFile), proxyConfig.policyFile);
  const inbound = proxyConfig.inbound[0]!;
  expectPort('sigil-proxy containerPort mtls', port(proxy, 'mtls'), inbound.listen.port);
  expectPort(
    'Service greeter mtls port',
    servicePort(find('Service', 'greeter'), 'mtls')?.port,
    inbound.listen.port,
  );
  const appContainer = containerOf(app, 'greeter');
  const appPort = Number((appContainer.env as Json[]).find((e) => e.name === 'PORT')?.value);
  expectPort('greeter PORT', appPort, inbound.app.port);
  if (!/ports: \[8080\]/.test(configMapFile(app, proxy, proxyConfig.policyFile ?? '')) || appPort !== 8080)
    fail('the policy rule does not name the app port');
  const header = readFileSync(path.join(MANIFEST_DIR, '30-app.yaml'), 'utf8');
  if (!header.includes(`--selector unix:uid:${proxy.securityContext.runAsUser}`))
    fail("the documented entry does not select the sidecar's runAsUser");
  return problems;
}

/** The server parser reads k8s_sat key files: give it a real key at a scratch path instead. */
function withScratchKeys(raw: Json, scratchDir: string): Json {
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
    type: 'spki',
    format: 'pem',
  });
  const file = scratchFile(scratchDir, 'sa.pub', pem);
  const copy = structuredClone(raw);
  for (const cluster of Object.values(copy.node_attestors.k8s_sat.clusters as Json)) {
    cluster.service_account_key_files = cluster.service_account_key_files.map(() => file);
  }
  return copy;
}

function scratchFile(dir: string, name: string, content: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}
