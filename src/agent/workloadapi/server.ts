// The Workload API endpoint: a Unix socket we listen on ourselves, so we can read each connection's
// peer credentials from the kernel before any byte of gRPC is parsed, then hand the socket to grpc-js
// through a connection injector. Plaintext h2c, no TLS: the spec forbids requiring it, and the
// caller is identified out of band. The socket file is made 0777 so that any local workload can
// connect (it has to, to be attested); who may reach it is governed by its directory, which the
// agent creates or checks (ours, 0755, no one else may write a directory on the path) before this starts.
import { lstat, unlink } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { Server as GrpcServer, ServerCredentials } from '@grpc/grpc-js';
import { workloadServiceDefinition } from '../../sdk/index.js';
import type { Clock } from '../../spiffe/clock.js';
import { quote, SigilError } from '../../spiffe/errors.js';
import { listenOnSocket } from '../../spiffe/socket-listen.js';
import { connectionTagOf, tagConnection } from './connection-tag.js';
import { createWorkloadApiHandlers, type WorkloadApiLogger } from './handler.js';
import type { CallerAttestor, IdentityFeed } from './identity-feed.js';
import { type PeerProcess, readPeerProcess } from './peer-cred.js';

export interface WorkloadApiServerOptions {
  /**
   * Absolute path of the Unix socket, in a directory already checked (prepareSocketDir, 'public');
   * a stale socket file there is removed at start.
   */
  socketPath: string;
  feed: IdentityFeed;
  attestor: CallerAttestor;
  logger: WorkloadApiLogger;
  /** Root of the proc filesystem for the PID-reuse guard. Defaults to '/proc'. */
  procRoot?: string;
  /** Defaults to the system clock. */
  clock?: Clock;
  /** Use SO_PEERPIDFD when the kernel has it (>= 6.5). Defaults to true. */
  usePidfd?: boolean;
}

export interface WorkloadApiServer {
  /** Stops accepting, ends every call and connection, and removes the socket file. */
  close(): Promise<void>;
}

/** Socket mode: every local user must be able to connect; see the module comment. */
const SOCKET_MODE = 0o777;

export async function startWorkloadApiServer(options: WorkloadApiServerOptions): Promise<WorkloadApiServer> {
  const { socketPath, logger } = options;
  const connections = new Map<string, PeerProcess>();
  const sockets = new Set<Socket>();
  let nextConnection = 0;

  // Channelz off: it would parse our connection tag as a peer address for no benefit.
  const grpcServer = new GrpcServer({ 'grpc.enable_channelz': 0 });
  grpcServer.addService(
    workloadServiceDefinition(),
    createWorkloadApiHandlers({
      feed: options.feed,
      attestor: options.attestor,
      logger,
      clock: options.clock,
      callerOf: (call) => {
        const tag = connectionTagOf(call);
        return tag === undefined ? undefined : connections.get(tag);
      },
    }),
  );
  const injector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());

  const netServer = createServer((socket) => {
    let peer: PeerProcess;
    try {
      peer = readPeerProcess(socket, { procRoot: options.procRoot, usePidfd: options.usePidfd });
    } catch (err) {
      logger.warn({ reason: (err as Error).message }, 'Workload API connection refused');
      socket.destroy();
      return;
    }
    const tag = String(nextConnection++);
    connections.set(tag, peer);
    sockets.add(socket);
    socket.once('close', () => {
      connections.delete(tag);
      sockets.delete(socket);
      peer.release();
    });
    tagConnection(socket, tag);
    injector.injectConnection(socket);
  });

  await removeStaleSocket(socketPath);
  await listenOnSocket(netServer, socketPath, SOCKET_MODE);
  logger.info({ socketPath }, 'Workload API listening');

  let closing: Promise<void> | undefined;
  return {
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => netServer.close(() => resolve()));
        grpcServer.forceShutdown();
        injector.destroy();
        for (const socket of sockets) socket.destroy();
        await stopped;
        await unlink(socketPath).catch(() => {
          // Already gone (removed by an operator or a restarted agent): nothing left to clean.
        });
      })();
      return closing;
    },
  };
}

/** A socket left by a crashed agent would make listen fail with EADDRINUSE; anything else is not ours to delete. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(socketPath)).isSocket();
  } catch {
    // Nothing there: the common case.
    return;
  }
  if (!isSocket) {
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `workload api: ${quote(socketPath)} exists and is not a socket; refusing to replace it`,
      { field: 'socket_path' },
    );
  }
  await unlink(socketPath);
}
