// The peers bench:proxy places Sigil among besides HAProxy (the reference every ratio divides by):
// nginx (a second C proxy) and Caddy (Go), from Debian's packages, each an mTLS sidecar pair
// configured like HAProxy's (proxy-peer-configs.ts). This file installs them, keeps the services
// their packages start out of the way, and runs each instance unprivileged under the bench's dir.
// It measures nothing: proxy.ts interleaves the peers with the other targets.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  type CaddyFiles,
  caddyInboundConfig,
  caddyOutboundConfig,
  NGINX_STREAM_MODULE,
  nginxInboundConfig,
  nginxOutboundConfig,
} from './proxy-peer-configs.js';
import type { ScenarioKey } from './proxy-scenario-figures.js';
import {
  type AppPorts,
  asUid,
  type BenchProc,
  canConnect,
  dirFor,
  type PairPorts,
  runCommand,
  type SvidFiles,
  spawnTracked,
  waitUntil,
} from './proxy-setup.js';

export type PeerName = 'nginx' | 'caddy';
/** --peers' names: HAProxy runs whatever the list says, as the reference. */
export const PEER_NAMES = ['haproxy', 'nginx', 'caddy'] as const;
export const DEFAULT_PEERS = 'haproxy,nginx,caddy';

export const PEER_LABELS: Record<PeerName, string> = { nginx: 'nginx', caddy: 'Caddy' };

/** The scenarios each peer takes part in: Debian's Caddy 2.6 has no layer4 module for TCP pipes. */
export const PEER_SCENARIOS: Record<PeerName, readonly ScenarioKey[]> = {
  nginx: ['h1', 'tcp', 'h2'],
  caddy: ['h1'],
};

/** What each peer can and cannot check, printed with the figures and written to RESULTS.md. */
export const PEER_NOTES: Record<PeerName, string> = {
  nginx:
    '1 process (master_process off, 1 worker); h1 via the http module, tcp and h2 via the stream module; ' +
    'verifies the client certificate against the bundle but cannot check its SPIFFE ID, and cannot verify the ' +
    'server sidecar at all (nginx verifies a chain only together with a DNS name or CN, which SVIDs lack)',
  caddy:
    'GOMAXPROCS=1 (one thread running Go code, as HAProxy has one thread); h1 only (Debian 2.6 has no ' +
    'layer4 module); the inbound verifies the client certificate and matches its SPIFFE ID (403 otherwise), ' +
    'the outbound cannot verify the server sidecar (Go verifies only by name; SVIDs have no DNS SAN)',
};

/** --peers LIST: the peers besides HAProxy, in the order given; unknown names are an error. */
export function parsePeers(raw: string | undefined): PeerName[] {
  const names = (raw ?? DEFAULT_PEERS)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const name of names)
    if (!(PEER_NAMES as readonly string[]).includes(name))
      throw new Error(`--peers: unknown peer ${name} (known: ${PEER_NAMES.join(', ')})`);
  return [...new Set(names.filter((n): n is PeerName => n !== 'haproxy'))];
}

// ---------------------------------------------------------------------------------------------
// Packages

const POLICY_RC_D = '/usr/sbin/policy-rc.d';

/** Debian's packages of each peer, and the file whose presence says it is installed. */
const PACKAGES: Record<PeerName, ReadonlyArray<{ pkg: string; file: string }>> = {
  nginx: [
    { pkg: 'nginx', file: '/usr/sbin/nginx' },
    { pkg: 'libnginx-mod-stream', file: NGINX_STREAM_MODULE },
  ],
  caddy: [{ pkg: 'caddy', file: '/usr/bin/caddy' }],
};

/** apt-get non-interactively; the exit status and stderr, never a throw. */
function aptGet(args: readonly string[]): { code: number; stderr: string } {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const res = spawnSync('apt-get', [...args], { env, encoding: 'utf8' });
  return { code: res.status ?? 1, stderr: res.stderr ?? '' };
}

/**
 * Installs the peers' packages when missing, with services kept from starting (a policy-rc.d
 * denying every start, only while installing and only if the machine has none), then stops and
 * disables whatever a package started anyway: nginx's default site binds port 80, Caddy's service
 * 80 and 2019. The bench's own instances bind only the ports it drew.
 */
export async function ensurePeerTools(
  peers: readonly PeerName[],
  log: (line: string) => void,
): Promise<void> {
  const missing = peers.flatMap((p) => PACKAGES[p]).filter((p) => !existsSync(p.file));
  for (const peer of peers)
    if (PACKAGES[peer].every((p) => existsSync(p.file)))
      log(`tools: ${peer} present (${await peerVersion(peer)}), not installing`);
  if (missing.length > 0) {
    if (process.getuid?.() !== 0)
      throw new Error(
        `missing ${missing.map((p) => p.pkg).join(', ')}; run as root so apt-get can install them`,
      );
    const pkgs = missing.map((p) => p.pkg);
    const ownPolicy = !existsSync(POLICY_RC_D);
    // Exit status 101: "action forbidden by policy"; invoke-rc.d and deb-systemd-invoke then start nothing.
    if (ownPolicy) writeFileSync(POLICY_RC_D, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    try {
      // Another bench on the machine may be installing too: wait for dpkg's lock rather than fail.
      const args = ['install', '-y', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300', ...pkgs];
      log(`tools: apt-get ${args.join(' ')}`);
      let result = aptGet(args);
      if (result.code !== 0) {
        log('tools: install failed; apt-get update, then again');
        const update = aptGet(['update', '-o', 'DPkg::Lock::Timeout=300']);
        if (update.code !== 0) throw new Error(`apt-get update failed:\n${update.stderr}`);
        result = aptGet(args);
      }
      if (result.code !== 0) throw new Error(`apt-get install ${pkgs.join(' ')} failed:\n${result.stderr}`);
    } finally {
      if (ownPolicy) rmSync(POLICY_RC_D, { force: true });
    }
    for (const p of missing)
      if (!existsSync(p.file)) throw new Error(`${p.pkg} installed but ${p.file} is missing`);
    for (const peer of peers) log(`tools: ${peer} ready (${await peerVersion(peer)})`);
  }
  await stopPackagedServices(peers, log);
}

/** The services Debian's packages define; stopped if running, disabled so a boot does not start them. */
async function stopPackagedServices(peers: readonly PeerName[], log: (line: string) => void): Promise<void> {
  const hasSystemd = existsSync('/run/systemd/system');
  for (const peer of peers) {
    if (hasSystemd) {
      const res = await runCommand('systemctl', ['disable', '--now', peer]);
      if (res.code === 0) log(`tools: systemctl disable --now ${peer}`);
    }
    // Without systemd only nginx has a way to run (its init script), and it leaves a pid file.
    const pidFile = peer === 'nginx' ? '/run/nginx.pid' : undefined;
    if (pidFile === undefined || !existsSync(pidFile)) continue;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) continue;
    try {
      process.kill(pid, 'SIGQUIT');
      log(`tools: stopped the packaged ${peer} service (pid ${pid}, from ${pidFile})`);
    } catch {
      // A stale pid file: the service is not running, which is what we want.
    }
  }
}

export async function peerVersion(peer: PeerName): Promise<string> {
  const res = peer === 'nginx' ? await runCommand('nginx', ['-v']) : await runCommand('caddy', ['version']);
  const text = `${res.stdout}${res.stderr}`.trim();
  return peer === 'nginx' ? text.replace(/^nginx version: /, '') : `caddy ${text.split(/\s/)[0] ?? '?'}`;
}

// ---------------------------------------------------------------------------------------------
// Pairs

export interface PeerPair {
  readonly name: PeerName;
  readonly outbound: BenchProc;
  readonly inbound: BenchProc;
}

export interface PeerPairOptions {
  readonly root: string;
  readonly ports: PairPorts;
  readonly app: AppPorts;
  readonly clientUid: number;
  readonly serverUid: number;
  readonly clientSvid: SvidFiles;
  readonly serverSvid: SvidFiles;
  readonly clientId: string;
}

interface Instance {
  readonly name: string;
  readonly uid: number;
  readonly dir: string;
  readonly config: string;
  readonly listens: readonly number[];
}

/** `nginx -t`, then nginx in the foreground as the instance's uid (setpriv execs it: one pid). */
async function startNginx(i: Instance): Promise<BenchProc> {
  const configPath = path.join(i.dir, 'nginx.conf');
  writeFileSync(configPath, i.config, { mode: 0o644 });
  // -e: the error log before the config is read (Debian's default is /var/log/nginx, root's).
  const args = ['nginx', '-p', i.dir, '-e', 'stderr', '-c', configPath];
  const check = await runCommand('setpriv', asUid(i.uid, [...args, '-t', '-q']));
  if (check.code !== 0) throw new Error(`${i.name}: nginx -t rejected ${configPath}:\n${check.stderr}`);
  const proc = spawnTracked(i.name, 'setpriv', asUid(i.uid, args));
  for (const port of i.listens)
    await waitUntil(() => canConnect(port), `${i.name} listening on ${port}`, proc);
  return proc;
}

/**
 * Caddy in the foreground as the instance's uid, GOMAXPROCS=1. HOME and XDG dirs point into its dir
 * so that nothing (autosave.json, storage) is written in root's home.
 */
async function startCaddy(i: Instance): Promise<BenchProc> {
  const configPath = path.join(i.dir, 'Caddyfile');
  writeFileSync(configPath, i.config, { mode: 0o644 });
  const env = [
    'env',
    `HOME=${i.dir}`,
    `XDG_DATA_HOME=${i.dir}/data`,
    `XDG_CONFIG_HOME=${i.dir}/config`,
    'GOMAXPROCS=1',
  ];
  const args = [...env, 'caddy', 'run', '--adapter', 'caddyfile', '--config', configPath];
  const proc = spawnTracked(i.name, 'setpriv', asUid(i.uid, args));
  for (const port of i.listens)
    await waitUntil(() => canConnect(port), `${i.name} listening on ${port}`, proc);
  return proc;
}

/** A peer's pair, inbound first (the outbound connects to it lazily, but checks come right after). */
export async function startPeerPair(peer: PeerName, o: PeerPairOptions): Promise<PeerPair> {
  const dirOf = (side: string, uid: number) => dirFor(uid, path.join(o.root, `${peer}-${side}`));
  const inDir = dirOf('inbound', o.serverUid);
  const outDir = dirOf('outbound', o.clientUid);
  const p = o.ports;
  if (peer === 'nginx') {
    const inbound = await startNginx({
      name: 'nginx server sidecar',
      uid: o.serverUid,
      dir: inDir,
      config: nginxInboundConfig({ dir: inDir }, p, o.app, o.serverSvid),
      listens: [p.inHttp, p.inTcp, p.inH2],
    });
    const outbound = await startNginx({
      name: 'nginx client sidecar',
      uid: o.clientUid,
      dir: outDir,
      config: nginxOutboundConfig({ dir: outDir }, p, o.clientSvid),
      listens: [p.outHttp, p.outTcp, p.outH2],
    });
    return { name: peer, inbound, outbound };
  }
  const files = (dir: string): CaddyFiles => ({ dir });
  const inbound = await startCaddy({
    name: 'caddy server sidecar',
    uid: o.serverUid,
    dir: inDir,
    config: caddyInboundConfig(files(inDir), p, o.app, o.serverSvid, o.clientId),
    listens: [p.inHttp],
  });
  const outbound = await startCaddy({
    name: 'caddy client sidecar',
    uid: o.clientUid,
    dir: outDir,
    config: caddyOutboundConfig(files(outDir), p, o.clientSvid),
    listens: [p.outHttp],
  });
  return { name: peer, inbound, outbound };
}
