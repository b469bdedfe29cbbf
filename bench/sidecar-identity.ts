// The identities of a bench's Sigil sidecar pair: a server, an agent attested with a join token, and
// an entry per sidecar uid, so that the agent gives the client and the server sidecar (run as two
// uids) two SPIFFE IDs. Used by the proxy and the rotation benches alike.
import path from 'node:path';
import type { BenchScope } from './bench-scope.js';
import { TD } from './proxy-setup.js';
import {
  type BenchAgent,
  type BenchServer,
  startAgent,
  startServerWithJoinToken,
} from './workload-processes.js';

export const CLIENT_UID = 65534;
export const SERVER_UID = 1;
export const CLIENT_ID = `${TD}/bench/client-sidecar`;
export const SERVER_ID = `${TD}/bench/server-sidecar`;
export const NODE_ID = `${TD}/bench/node`;

export interface SidecarIdentity {
  readonly server: BenchServer;
  readonly agent: BenchAgent;
}

/** Starts both in the scope's dir and hands them to its cleanup. */
export async function startSidecarIdentity(
  scope: BenchScope,
  options: { readonly x509SvidTtlS?: number } = {},
): Promise<SidecarIdentity> {
  const { server, bundlePath, joinToken } = await startServerWithJoinToken(scope.root, NODE_ID);
  scope.daemons.push(server);
  const ttl = options.x509SvidTtlS === undefined ? [] : ['--x509-svid-ttl', `${options.x509SvidTtlS}s`];
  for (const [id, uid] of [
    [CLIENT_ID, CLIENT_UID],
    [SERVER_ID, SERVER_UID],
  ] as const) {
    await server.cli(
      'entry',
      'create',
      '--spiffe-id',
      id,
      '--parent-id',
      NODE_ID,
      '--selector',
      `unix:uid:${uid}`,
      ...ttl,
    );
  }
  const agent = await startAgent({ root: path.join(scope.root, 'agent'), server, joinToken, bundlePath });
  scope.daemons.push(agent);
  return { server, agent };
}
