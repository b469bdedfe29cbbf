// The sockets both Node floors (node-floor-proxy.ts, node-llhttp-floor.ts) and the llhttp relay's
// listeners build alike: the mTLS hop's two ends from a prebuilt ProxyIdentity context, the opaque
// pipe of their TCP and HTTP/2 listeners, and the config's `host:port`. One copy, so that the floors
// compared in the bench differ only in how they relay HTTP/1.1.
import type { Socket } from 'node:net';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import type { ProxyIdentity } from '../src/proxy/identity.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Contexts only: a floor checks no SPIFFE IDs (it measures the data path, not policy). */
export type FloorIdentity = Pick<ProxyIdentity, 'clientContext' | 'serverContext'>;

/** `host:port` as the config writes a listener's address. */
export function hostPort(text: string): HostPort {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
}

/** The client side of the mTLS hop to the peer's inbound: its certificate presented, the peer's not checked. */
export function mtlsClient(target: HostPort, identity: FloorIdentity): TLSSocket {
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
export function mtlsServer(raw: Socket, identity: FloorIdentity): TLSSocket {
  return new TLSSocket(raw, {
    isServer: true,
    secureContext: identity.serverContext,
    requestCert: true,
    rejectUnauthorized: false,
  });
}

/** Bytes both ways; an error on either side ends both. */
export function pipe(a: Socket, b: Socket): void {
  a.pipe(b).pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}
