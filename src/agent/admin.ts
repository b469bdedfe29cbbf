// The agent's admin socket (owner-only): health for probes (503 with the reasons when unhealthy, see
// identity/health.ts) and `debug explain`, which answers the operator's "why has this workload no
// identity?" by attesting a PID the way the Workload API would.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import type { PeerCred } from '../attestors/workload/types.js';
import { SigilError } from '../spiffe/errors.js';
import { httpStatusFor, isInternalHttpStatus } from '../spiffe/http-status.js';
import { formatSelector, type Selector } from '../spiffe/selector.js';
import { listenOnSocket, removeStaleSocket } from '../spiffe/socket-listen.js';
import type { AgentHealth } from './identity/index.js';
import type { AgentManager } from './manager/index.js';

export interface AgentStatus {
  readonly agentId: string;
  readonly svidExpiresAtMs: number;
  readonly serverConnected: boolean;
  readonly revision: number;
  readonly entries: number;
  /** Workload X.509-SVIDs held and not yet expired. */
  readonly svids: number;
  readonly health: AgentHealth;
}

/** Owner-only: on this socket, file permissions are the only authentication. */
const ADMIN_SOCKET_MODE = 0o600;

export interface AgentAdminOptions {
  /** In a directory already checked and made ours (prepareSocketDir, 'private'). */
  readonly socketPath: string;
  readonly manager: Pick<AgentManager, 'matching' | 'nearMatches' | 'svidStatus' | 'entries'>;
  readonly attestor: { attest(peer: PeerCred, signal: AbortSignal): Promise<Selector[]> };
  status(): AgentStatus;
  readonly logger: Logger;
  /** Where process information is read; '/proc' outside tests. */
  readonly procRoot?: string;
}

export async function startAgentAdmin(options: AgentAdminOptions): Promise<{ close(): Promise<void> }> {
  const { socketPath, logger } = options;
  const server = http.createServer((request, response) => {
    handle(request.url ?? '/', options).then(
      ({ status, body }) => {
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(`${JSON.stringify(body)}\n`);
      },
      (err) => {
        const status = err instanceof SigilError ? httpStatusFor(err.code) : 500;
        // Our own failures are logged whole (stack and cause) and answered without internals.
        const internal = isInternalHttpStatus(status);
        if (internal) logger.error({ err }, 'Agent admin request failed');
        const error = internal
          ? {
              code: err instanceof SigilError ? err.code : 'ERR_INTERNAL',
              message: 'internal error; see the agent log',
            }
          : { code: err.code, message: err.message };
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(`${JSON.stringify({ error })}\n`);
      },
    );
  });
  await removeStaleSocket(socketPath, 'admin_socket');
  await listenOnSocket(server, socketPath, ADMIN_SOCKET_MODE);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(url: string, options: AgentAdminOptions): Promise<{ status: number; body: unknown }> {
  const parsed = new URL(url, 'http://agent');
  if (parsed.pathname === '/healthz') {
    const status = options.status();
    return {
      // Degraded (server unreachable, SVIDs valid) still serves: healthy to a probe.
      status: status.health.status === 'unhealthy' ? 503 : 200,
      body: {
        status: status.health.status,
        reasons: status.health.reasons,
        warnings: status.health.warnings,
        agent_id: status.agentId,
        svid_expires_at: Math.floor(status.svidExpiresAtMs / 1000),
        server_connected: status.serverConnected,
        revision: status.revision,
        entries: status.entries,
        svids: status.svids,
      },
    };
  }
  if (parsed.pathname === '/debug/explain') {
    const pid = Number(parsed.searchParams.get('pid'));
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new SigilError(
        'ERR_INPUT_INVALID',
        `pid: must be a positive process ID (got "${parsed.searchParams.get('pid')}")`,
        { field: 'pid' },
      );
    }
    return { status: 200, body: await explain(pid, options) };
  }
  return { status: 404, body: { error: { code: 'ERR_NOT_FOUND', message: `no route ${parsed.pathname}` } } };
}

async function explain(pid: number, options: AgentAdminOptions) {
  const peer = await peerOfPid(pid, options.procRoot ?? '/proc');
  const selectors = await options.attestor.attest(peer, AbortSignal.timeout(10_000));
  const matching = options.manager.matching(selectors).map((entry) => ({
    entry_id: entry.id,
    spiffe_id: entry.spiffeId,
    selectors: entry.selectors.map(formatSelector),
    synced: true,
    ...describeSvid(options.manager.svidStatus(entry.id)),
  }));
  const near = options.manager.nearMatches(selectors).map(({ entry, missing }) => ({
    entry_id: entry.id,
    spiffe_id: entry.spiffeId,
    selectors: entry.selectors.map(formatSelector),
    missing: missing.map(formatSelector),
  }));
  return {
    pid,
    uid: peer.uid,
    gid: peer.gid,
    selectors: selectors.map(formatSelector),
    matching,
    near_matches: near,
  };
}

function describeSvid(status: { minted: boolean; expiresAtMs?: number; serialHex?: string }) {
  return {
    minted: status.minted,
    ...(status.expiresAtMs !== undefined ? { expires_at: Math.floor(status.expiresAtMs / 1000) } : {}),
    ...(status.serialHex ? { serial: status.serialHex } : {}),
  };
}

/** uid/gid of a running process from /proc/<pid>/status (real IDs, the first of each line). */
async function peerOfPid(pid: number, procRoot: string): Promise<PeerCred> {
  let text: string;
  try {
    text = await readFile(path.join(procRoot, String(pid), 'status'), 'utf8');
  } catch {
    throw new SigilError('ERR_INPUT_INVALID', `pid: no process ${pid} (or it is not visible to the agent)`, {
      field: 'pid',
    });
  }
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { pid, uid: field('Uid'), gid: field('Gid') };
}
