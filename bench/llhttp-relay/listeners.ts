// The relay's two HTTP/1.1 listeners, as a sidecar pair runs them: outbound takes the app's plaintext
// requests and relays them over mTLS to the peer's inbound; inbound terminates mTLS and relays to
// the local app in plaintext. TLS is set up as the Node floor sets it up (node-floor-sockets.ts): one
// prebuilt context from ProxyIdentity, the client certificate requested but not checked here.
import { createServer, connect as netConnect, type Server } from 'node:net';
import { type FloorIdentity, type HostPort, mtlsClient, mtlsServer } from '../node-floor-sockets.js';
import { serveConnection } from './downstream.js';
import { UpstreamPool } from './upstream-pool.js';

export interface RelayListenerOptions {
  readonly listen: HostPort;
  /** Outbound: the peer sidecar's inbound. Inbound: the app. */
  readonly target: HostPort;
  readonly identity: FloorIdentity;
  /** Parsers read the sockets' native streams themselves (MessageParser.consume). Defaults to false. */
  readonly consume?: boolean;
}

/**
 * Half-open sockets are allowed, as node:http allows them: a client may end its side after its
 * last request and still read the answers. The TLS socket inherits this from the raw one.
 */
const SERVER_OPTIONS = { noDelay: true, allowHalfOpen: true } as const;

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
