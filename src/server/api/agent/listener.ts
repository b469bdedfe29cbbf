// Binds the agent API: our own TLS listener feeding grpc-js through a connection injector, so the
// connection's life is ours to bound (grpc-js's bindAsync offers no handshake timeout or connection
// cap, and Node's 120 s handshake default let silent sockets pile up). Each phase has a deadline:
// TCP accept → TLS handshake (handshakeTimeoutMs) → calls, each of which must send its request in
// time (requestTimeoutMs) → a connection with no call open is closed (idleTimeoutMs, grpc-js
// max_connection_idle). Connections are capped in total (a failed accept is logged, never fatal) and
// per source IP, and calls per connection (maxConcurrentStreams, announced in HTTP/2 SETTINGS).
// Client certificates are requested but not required (Attest comes without one); each handler
// decides whether the call needs an agent (agent-auth.ts), reading the verified peer certificate
// grpc-js exposes for TLS sockets.
import net from 'node:net';
import tls from 'node:tls';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { agentApiService } from '../../../../proto/agent-api.js';
import { capConnections } from '../../../spiffe/connection-cap.js';
import { SigilError } from '../../../spiffe/errors.js';
import type { TlsIdentity, TlsMaterial } from '../../../spiffe/tls-material.js';
import { connectionCapRefusals, refusalLog } from '../refusal-log.js';
import type { AgentApiDeps } from './deps.js';
import { type AgentApiLimits, MAX_MESSAGE_BYTES } from './limits.js';
import { requestTimeout } from './request-timeout.js';
import { createAgentService } from './service.js';
import { sourceIp } from './source-ip.js';

/** In-flight streams get this long to finish when the server stops. */
const DRAIN_MS = 2_000;

export interface AgentApiListener {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startAgentApi(
  bind: { host: string; port: number },
  material: TlsMaterial,
  deps: AgentApiDeps,
  limits: AgentApiLimits,
): Promise<AgentApiListener> {
  const log = deps.logger.child({ component: 'agent-api' });
  const grpcServer = new Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_connection_idle_ms': limits.idleTimeoutMs,
    // Sent in SETTINGS; nghttp2 answers streams beyond it with RST_STREAM(REFUSED_STREAM).
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    interceptors: [requestTimeout(deps.clock, limits.requestTimeoutMs)],
  });
  grpcServer.addService(agentApiService, createAgentService(deps, limits));
  // TLS is ours: grpc-js speaks plain HTTP/2 over the TLS socket we hand it, and still reads the
  // peer certificate from it (getAuthContext checks for a TLSSocket).
  const injector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());
  const refusals = refusalLog<'connection-cap' | 'accept-failed' | 'ip-cap' | 'handshake' | 'alpn'>({
    clock: deps.clock,
    logger: log,
    message: 'Agent API connections refused',
    counter: deps.metrics.agentApiRefusals,
  });

  // TLS over a plain TCP listener of ours: connections past a cap are closed before TLS sees them.
  const tlsServer = tls.createServer({
    handshakeTimeout: limits.handshakeTimeoutMs,
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: ['h2'],
    minVersion: 'TLSv1.2',
  });
  const unwatch = watchMaterial(material, (options) => tlsServer.setSecureContext(options));
  const tcpServer = net.createServer();
  capConnections(tcpServer, limits.maxConnections, connectionCapRefusals(refusals));
  const open = new Set<net.Socket>();
  const perIp = new Map<string, number>();
  tcpServer.on('connection', (socket: net.Socket) => {
    const ip = sourceIp(socket.remoteAddress);
    const fromIp = (perIp.get(ip) ?? 0) + 1;
    if (fromIp > limits.maxConnectionsPerIp) {
      socket.destroy();
      refusals.note('ip-cap', ip);
      return;
    }
    perIp.set(ip, fromIp);
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left <= 0) perIp.delete(ip);
      else perIp.set(ip, left);
    });
    tlsServer.emit('connection', socket);
  });
  // Handshake failures and timeouts: Node reports them here but leaves the socket open.
  tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    socket.destroy();
    refusals.note('handshake', socket.remoteAddress ?? 'unknown', err.code ?? err.message);
  });
  tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
    socket.on('error', () => {
      // Resets and aborts after the handshake: grpc-js sees the session close; nothing to add.
    });
    if (socket.alpnProtocol !== 'h2') {
      socket.destroy();
      refusals.note('alpn', socket.remoteAddress ?? 'unknown');
      return;
    }
    injector.injectConnection(socket);
  });

  const host = bind.host.includes(':') ? `[${bind.host}]` : bind.host;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) =>
      reject(
        new SigilError(
          'ERR_UNAVAILABLE',
          `cannot listen for agents on ${host}:${bind.port}: ${err.message}`,
          {
            cause: err,
          },
        ),
      );
    tcpServer.once('error', onError);
    tcpServer.listen(bind.port, bind.host, () => {
      tcpServer.off('error', onError);
      resolve();
    });
  });
  const bound = tcpServer.address() as net.AddressInfo;
  return {
    address: { host: bind.host, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        unwatch();
        refusals.close();
        tcpServer.close();
        const finish = () => {
          // Whatever is still open never reached gRPC (mid-handshake) or outlived the drain.
          for (const socket of open) socket.destroy();
          resolve();
        };
        const force = deps.clock.setTimer(DRAIN_MS, () => {
          grpcServer.forceShutdown();
          finish();
        });
        grpcServer.tryShutdown(() => {
          force();
          finish();
        });
      }),
  };
}

/** Applies identity and CA from `material` whenever both are known and either changes. */
function watchMaterial(
  material: TlsMaterial,
  apply: (options: tls.SecureContextOptions) => void,
): () => void {
  let ca: Buffer | null = null;
  let identity: TlsIdentity | null = null;
  const update = () => {
    if (ca !== null && identity !== null) {
      apply({ ca, cert: identity.certificate, key: identity.privateKey });
    }
  };
  const onCa = (next: { caCertificate: Buffer } | null) => {
    ca = next?.caCertificate ?? null;
    update();
  };
  const onIdentity = (next: TlsIdentity | null) => {
    identity = next;
    update();
  };
  material.addCaCertificateListener(onCa);
  material.addIdentityCertificateListener(onIdentity);
  return () => {
    material.removeCaCertificateListener(onCa);
    material.removeIdentityCertificateListener(onIdentity);
  };
}
