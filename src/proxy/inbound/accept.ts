// Accepting inbound connections: peek the first byte to tell TLS from plaintext, terminate mTLS with
// the identity's CURRENT server context (read per connection, so rotation needs no listener change),
// and verify the client with ProxyIdentity.verifyPeer once per connection. What happens after
// (HTTP, opaque pipe, authorization) belongs to the caller. Plaintext is refused unless permissive.
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Clock } from '../../spiffe/clock.js';
import { isSigilError } from '../../spiffe/errors.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';
import { type ProxyIdentity, peerChainOf, type VerifiedPeer } from '../identity.js';
import type { ProxyLogger } from '../logger.js';
import type { ProxyMetrics } from '../metrics.js';

/** First byte of a TLS handshake record (ContentType handshake, RFC 8446 §5.1). */
const TLS_HANDSHAKE_RECORD = 0x16;

export interface AcceptOptions {
  readonly listener: string;
  readonly mode: 'strict' | 'permissive';
  readonly identity: ProxyIdentity;
  readonly metrics: ProxyMetrics;
  readonly logger: ProxyLogger;
  readonly clock: Clock;
  /** A connection that has not finished its handshake (and verification) by then is dropped. */
  readonly handshakeTimeoutMs: number;
  /** A verified mTLS connection. */
  readonly onSecure: (socket: TLSSocket, peer: VerifiedPeer) => void;
  /** A plaintext connection (permissive mode only); its first bytes are back in its read buffer. */
  readonly onPlaintext: (socket: Socket) => void;
}

/** A net.Server that hands verified TLS (and, when permissive, plaintext) connections to the callbacks. */
export function createAcceptServer(options: AcceptOptions): { server: Server; sockets: Set<Socket> } {
  const sockets = new Set<Socket>();
  // allowHalfOpen: a client that shuts down its writing side may still be owed a reply (tcp mode).
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (raw) => {
    sockets.add(raw);
    raw.once('close', () => sockets.delete(raw));
    accept(raw, options);
  });
  return { server, sockets };
}

function accept(raw: Socket, options: AcceptOptions): void {
  const { listener, metrics } = options;
  const cancelTimer = options.clock.setTimer(options.handshakeTimeoutMs, () => {
    metrics.handshakeFailures.inc({ listener, direction: 'inbound', reason: 'timeout' });
    options.logger.debug(
      { listener, remote: raw.remoteAddress, timeout_ms: options.handshakeTimeoutMs },
      'Handshake timed out',
    );
    raw.destroy();
  });
  // Until a handler owns the socket, its errors are resets by a caller that went away; the close
  // listener below cancels the timer, nothing else is pending.
  const onEarlyError = () => raw.destroy();
  raw.on('error', onEarlyError);
  raw.once('close', cancelTimer);
  raw.once('data', (chunk: Buffer) => {
    raw.pause();
    raw.unshift(chunk);
    raw.off('error', onEarlyError);
    if (chunk[0] === TLS_HANDSHAKE_RECORD) {
      acceptTls(raw, options, cancelTimer);
      return;
    }
    cancelTimer();
    if (options.mode === 'strict') {
      metrics.plaintextConnections.inc({ listener, result: 'refused' });
      options.logger.warn(
        { listener, remote: raw.remoteAddress },
        'Plaintext connection refused (strict mode)',
      );
      raw.destroy();
      return;
    }
    metrics.plaintextConnections.inc({ listener, result: 'accepted' });
    options.onPlaintext(raw);
  });
}

function acceptTls(raw: Socket, options: AcceptOptions, cancelTimer: () => void): void {
  const { listener, metrics, identity } = options;
  // TLSSocket reads what is already buffered on `raw` (the peeked record) before its own reads.
  const socket = new TLSSocket(raw, {
    isServer: true,
    secureContext: identity.serverContext,
    // Ask for the client certificate but let the handshake finish: verifyPeer decides, against
    // the bundle of the client's own trust domain, and names the reason.
    requestCert: true,
    rejectUnauthorized: false,
  });
  let isSecure = false;
  socket.once('close', cancelTimer);
  socket.on('error', (err) => {
    if (!isSecure) {
      metrics.handshakeFailures.inc({ listener, direction: 'inbound', reason: 'tls' });
      options.logger.debug({ listener, remote: raw.remoteAddress, err: err.message }, 'TLS handshake failed');
    }
    // After the handshake the owner (HTTP server or pipe) has its own error handling; this one
    // only keeps an unowned error from becoming an uncaught exception.
    socket.destroy();
  });
  socket.once('secure', () => {
    isSecure = true;
    cancelTimer();
    const chain = peerChainOf(socket);
    let peer: VerifiedPeer;
    try {
      peer = identity.verifyPeer(chain);
    } catch (err) {
      const reason = isSigilError(err) ? (err.reason ?? err.code) : 'verify';
      metrics.handshakeFailures.inc({ listener, direction: 'inbound', reason });
      options.logger.warn(
        {
          listener,
          source_id: claimedIdOf(chain),
          destination_id: identity.spiffeId,
          reason,
          err: err instanceof Error ? err.message : String(err),
        },
        'Client certificate refused',
      );
      socket.destroy();
      return;
    }
    options.onSecure(socket, peer);
  });
}

/** The URI SAN the client claimed, unverified, for the refusal log only. */
function claimedIdOf(chain: readonly Buffer[]): string | null {
  if (chain.length === 0) return null;
  try {
    return describeCertificate(chain[0]!).spiffeId;
  } catch {
    // An unreadable leaf has no claim to log; verifyPeer's error already says what is wrong.
    return null;
  }
}
