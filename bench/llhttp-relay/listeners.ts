// The relay's two HTTP/1.1 listeners, as a sidecar pair runs them: outbound takes the app's plaintext
// requests and relays them over mTLS to the peer's inbound; inbound terminates mTLS and relays to
// the local app in plaintext. TLS is set up as the Node floor sets it up (node-floor-proxy.ts): one
// prebuilt context from ProxyIdentity, the client certificate requested but not checked here.
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import type { ProxyIdentity } from '../../src/proxy/identity.js';
import { serveConnection } from './downstream.js';
import { UpstreamPool } from './upstream-pool.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Contexts only: the relay checks no SPIFFE IDs (a floor measures the data path, not policy). */
type Identity = Pick<ProxyIdentity, 'clientContext' | 'serverContext'>;

export interface RelayListenerOptions {
  readonly listen: HostPort;
  /** Outbound: the peer sidecar's inbound. Inbound: the app. */
  readonly target: HostPort;
  readonly identity: Identity;
  /** Parsers read the sockets' native streams themselves (MessageParser.consume). Defaults to false. */
  readonly consume?: boolean;
}

/**
 * Half-open sockets are allowed, as node:http allows them: a client may end its side after its
 * last request and still read the answers. The TLS socket inherits this from the raw one.
 */
const SERVER_OPTIONS = { noDelay: true, allowHalfOpen: true } as const;

/** The client side of the mTLS hop to the peer's inbound: its certificate presented, the peer's not checked. */
export function mtlsClient(target: HostPort, identity: Identity): TLSSocket {
  const socket = tlsConnect({
    host: target.host,
    port: target.port,
    secureContext: identity.clientContext,
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
  socket.setNoDelay(true);
  return socket;
}

/** The server side of the mTLS hop over an accepted socket: the client certificate requested, not checked. */
export function mtlsServer(raw: Socket, identity: Identity): TLSSocket {
  return new TLSSocket(raw, {
    isServer: true,
    secureContext: identity.serverContext,
    requestCert: true,
    rejectUnauthorized: false,
  });
}

export function startOutboundRelay(options: RelayListenerOptions): Promise<Server> {
  const { target, identity } = options;
  const consume = { consume: options.consume ?? false };
  const pool = new UpstreamPool(() => mtlsClient(target, identity), consume);
  return listen(
    createServer(SERVER_OPTIONS, (app) => serveConnection(app, pool, consume)),
    options.listen,
  );
}

export function startInboundRelay(options: RelayListenerOptions): Promise<Server> {
  const { target, identity } = options;
  const consume = { consume: options.consume ?? false };
  const pool = new UpstreamPool(
    () => netConnect({ host: target.host, port: target.port, noDelay: true }),
    consume,
  );
  return listen(
    createServer(SERVER_OPTIONS, (raw) => {
      const socket = mtlsServer(raw, identity);
      // A failed handshake or reset: the downstream sees 'close' and lets its exchanges go.
      socket.on('error', () => socket.destroy());
      serveConnection(socket, pool, consume);
    }),
    options.listen,
  );
}

function listen(server: Server, at: HostPort): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
