// The Workload API endpoint: a Unix socket we listen on ourselves, so we can read each connection's
// peer credentials from the kernel before any byte of gRPC is parsed, then hand the socket to grpc-js
// through a connection injector. Plaintext h2c, no TLS: the spec forbids requiring it, and the
// caller is identified out of band. The socket file is made 0777 so that any local workload can
// connect (it has to, to be attested); who may reach it is governed by its directory, which the
// agent creates or checks (ours, 0755, no one else may write a directory on the path) before this
// starts. Because anyone may connect, connections and streams are capped and idle ones closed
// (connection-table.ts, connection-limits.ts), and requests are bounded in size and decoded strictly
// (request-decoding.ts).
import { unlink } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { Server as GrpcServer, ServerCredentials } from '@grpc/grpc-js';
import { type Clock, systemClock } from '../../spiffe/clock.js';
import { MAX_JWT_SVID_BYTES } from '../../spiffe/jwt-svid.js';
import { listenOnSocket, removeStaleSocket } from '../../spiffe/socket-listen.js';
import {
  DEFAULT_WORKLOAD_API_LIMITS,
  effectiveLimits,
  readOpenFileLimit,
  type WorkloadApiLimits,
} from './connection-limits.js';
import { ConnectionTable } from './connection-table.js';
import { connectionTagOf, tagConnection } from './connection-tag.js';
import { createWorkloadApiHandlers, type WorkloadApiLogger } from './handler.js';
import type { CallerAttestor, IdentityFeed } from './identity-feed.js';
import { NO_WORKLOAD_API_OBSERVER, type WorkloadApiObserver } from './observer.js';
import { type PeerProcess, readPeerProcess } from './peer-cred.js';
import { strictWorkloadServiceDefinition } from './request-decoding.js';

export interface WorkloadApiServerOptions {
  /**
   * Absolute path of the Unix socket, in a directory already checked (prepareSocketDir, 'public');
   * a stale socket file there is removed at start, a live one refused (ERR_CONFIG_INVALID).
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
  /** Connection, stream and idle limits. Defaults to DEFAULT_WORKLOAD_API_LIMITS. */
  limits?: WorkloadApiLimits;
  /** RLIMIT_NOFILE to size the connection cap by. Defaults to this process's, from /proc/self/limits. */
  openFileLimit?: number;
  /** Told of refused connections, streams and call statuses (metrics). Defaults to nobody. */
  observer?: WorkloadApiObserver;
}

export interface WorkloadApiServer {
  /** Stops accepting, ends every call and connection, and removes the socket file. */
  close(): Promise<void>;
}

/** Socket mode: every local user must be able to connect; see the module comment. */
const SOCKET_MODE = 0o777;
/**
 * The largest valid request is a ValidateJWTSVIDRequest with a token of MAX_JWT_SVID_BYTES and a
 * 1 KiB audience; grpc-js refuses a longer message from its length prefix, before buffering it
 * (RESOURCE_EXHAUSTED), instead of its default of 4 MiB per stream.
 */
const MAX_REQUEST_BYTES = 2 * MAX_JWT_SVID_BYTES;

interface Connection {
  readonly socket: Socket;
  readonly peer: PeerProcess;
}

export async function startWorkloadApiServer(options: WorkloadApiServerOptions): Promise<WorkloadApiServer> {
  const { socketPath, logger } = options;
  const observer = options.observer ?? NO_WORKLOAD_API_OBSERVER;
  const clock = options.clock ?? systemClock;
  const configured = options.limits ?? DEFAULT_WORKLOAD_API_LIMITS;
  const limits = effectiveLimits(configured, options.openFileLimit ?? readOpenFileLimit());
  const connections = new Map<string, Connection>();
  let nextConnection = 0;
  /** Closes a connection the table let go of (idle, or evicted), saying why. */
  const closeConnection = (id: string, fields: { reason: string; forPid?: number; forUid?: number }) => {
    const connection = connections.get(id);
    if (!connection) return;
    const { pid, uid } = connection.peer.cred;
    logger.warn({ pid, uid, ...fields }, 'Workload API connection closed');
    connection.socket.destroy();
  };
  const table = new ConnectionTable({
    limits,
    clock,
    onIdle: (id, _uid, reason) => closeConnection(id, { reason }),
  });
  const callerOf = (call: { getPeer(): string }) => {
    const tag = connectionTagOf(call);
    const peer = tag === undefined ? undefined : connections.get(tag)?.peer;
    if (tag === undefined || peer === undefined) return undefined;
    return { cred: peer.cred, change: () => peer.change(), openCall: () => table.openCall(tag) };
  };

  const grpcServer = new GrpcServer({
    // Channelz off: it would parse our connection tag as a peer address for no benefit.
    'grpc.enable_channelz': 0,
    'grpc.max_receive_message_length': MAX_REQUEST_BYTES,
    // Sent in SETTINGS; nghttp2 answers streams beyond it with RST_STREAM(REFUSED_STREAM).
    'grpc.max_concurrent_streams': configured.maxStreamsPerConnection,
  });
  grpcServer.addService(
    strictWorkloadServiceDefinition(),
    createWorkloadApiHandlers({
      feed: options.feed,
      attestor: options.attestor,
      logger,
      clock,
      callerOf,
      observer,
    }),
  );
  const injector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());

  const netServer = createServer((socket) => {
    let peer: PeerProcess;
    try {
      peer = readPeerProcess(socket, { procRoot: options.procRoot, usePidfd: options.usePidfd });
    } catch (err) {
      logger.warn({ reason: (err as Error).message }, 'Workload API connection refused');
      observer.connectionRefused('peer-credentials');
      socket.destroy();
      return;
    }
    const { pid, uid } = peer.cred;
    const tag = String(nextConnection++);
    const admission = table.admit(tag, uid);
    if (!admission.admitted) {
      logger.warn({ pid, uid, reason: admission.reason }, 'Workload API connection refused');
      observer.connectionRefused(admission.cap);
      peer.release();
      socket.destroy();
      return;
    }
    const { evicted } = admission;
    if (evicted) closeConnection(evicted.id, { reason: evicted.reason, forPid: pid, forUid: uid });
    connections.set(tag, { socket, peer });
    socket.once('close', () => {
      table.remove(tag);
      connections.delete(tag);
      peer.release();
    });
    tagConnection(socket, tag);
    injector.injectConnection(socket);
  });

  // A socket a running agent serves is refused here too: the claim before attestation found the
  // path free, but another agent may have bound it since.
  await removeStaleSocket(socketPath, 'socket_path');
  await listenOnSocket(netServer, socketPath, SOCKET_MODE, { field: 'socket_path' });
  // accept() failing (EMFILE despite the cap: something else took the descriptors) is logged, not
  // thrown: libuv has already closed that pending connection, and the next may succeed.
  netServer.on('error', (err) => logger.error({ reason: err.message }, 'Workload API accept failed'));
  logger.info(
    {
      socketPath,
      maxConnections: limits.maxConnections,
      descriptorBound: limits.descriptorBound,
      maxConnectionsPerUid: limits.maxConnectionsPerUid,
      maxStreamsPerConnection: configured.maxStreamsPerConnection,
      idleTimeoutMs: limits.idleTimeoutMs,
    },
    'Workload API listening',
  );

  let closing: Promise<void> | undefined;
  return {
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => netServer.close(() => resolve()));
        grpcServer.forceShutdown();
        injector.destroy();
        for (const { socket } of connections.values()) socket.destroy();
        await stopped;
        await unlink(socketPath).catch(() => {
          // Already gone (removed by an operator or a restarted agent): nothing left to clean.
        });
      })();
      return closing;
    },
  };
}
