// The registration steps most end-to-end tests start with, through the server's own CLI: the trust
// bundle an agent bootstraps from, a join token for its node, and entries that pick workloads by uid.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { type AgentProcess, startAgentProcess } from './agent-harness.js';
import type { CliResult, ServerProcess } from './harness.js';

export const TD = 'spiffe://example.org';
/** The node every helper here registers under unless told otherwise. */
export const NODE1 = `${TD}/node1`;

function succeeded(what: string, res: CliResult): CliResult {
  if (res.code !== 0) throw new Error(`sigil-server ${what} failed (exit ${res.code}): ${res.stderr}`);
  return res;
}

/** Writes the server's bundle as PEM to `file` (what `--trust-bundle-path` takes) and returns `file`. */
export async function writeBundlePem(server: ServerProcess, file: string): Promise<string> {
  writeFileSync(file, succeeded('bundle show', await server.cli('bundle', 'show', '--format', 'pem')).stdout);
  return file;
}

/** A join token whose agent gets `spiffeId` (default node1's). */
export async function joinToken(server: ServerProcess, spiffeId = NODE1): Promise<string> {
  const res = await server.cli('token', 'generate', '--output', 'json', '--spiffe-id', spiffeId);
  return JSON.parse(succeeded('token generate', res).stdout).token;
}

/** An entry `<td>/<name>` for processes running as `uid`, under node1 unless told; its ID. */
export async function uidEntry(
  server: ServerProcess,
  name: string,
  uid: number,
  options: { readonly parentId?: string; readonly x509SvidTtl?: string } = {},
): Promise<string> {
  const res = await server.cli(
    'entry',
    'create',
    '--output',
    'json',
    '--spiffe-id',
    `${TD}/${name}`,
    '--parent-id',
    options.parentId ?? NODE1,
    '--selector',
    `unix:uid:${uid}`,
    ...(options.x509SvidTtl ? ['--x509-svid-ttl', options.x509SvidTtl] : []),
  );
  return JSON.parse(succeeded('entry create', res).stdout).entry.id;
}

/**
 * The identity setup sidecar tests share: the bundle in DIR/bundle.pem, an entry `<td>/<name>` per
 * [name, uid], then an agent in DIR/agent attested with a join token for node1.
 */
export async function startAgentWithEntries(
  server: ServerProcess,
  dir: string,
  entries: ReadonlyArray<readonly [name: string, uid: number]>,
  options: { readonly x509SvidTtl?: string; readonly agentArgs?: readonly string[] } = {},
): Promise<AgentProcess> {
  const trustBundlePath = await writeBundlePem(server, path.join(dir, 'bundle.pem'));
  const token = await joinToken(server);
  for (const [name, uid] of entries) await uidEntry(server, name, uid, { x509SvidTtl: options.x509SvidTtl });
  return startAgentProcess(server, {
    root: path.join(dir, 'agent'),
    joinToken: token,
    trustBundlePath,
    extraArgs: options.agentArgs,
  });
}
