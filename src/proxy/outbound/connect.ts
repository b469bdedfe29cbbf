// mTLS connections to an upstream sidecar. Every connection uses the identity's CURRENT client
// context, and no app byte is sent before the server is verified: its chain against the bundle of
// its own trust domain (ProxyIdentity.verifyPeer), then its SPIFFE ID against the accepted list.
// A resumed TLS session carries no server certificate, so tickets are cached with the identity they
// were verified under, dropped on our rotation and never used past the server leaf's expiry.
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { Clock } from '../../spiffe/clock.js';
import { quote, SigilError } from '../../spiffe/errors.js';
import { DirectReads } from '../direct-reads.js';
import { type ProxyIdentity, peerChainOf } from '../identity.js';

export interface UpstreamConnectorOptions {
  readonly host: string;
  readonly port: number;
  /** SPIFFE IDs the upstream sidecar may present; anything else is a hard failure. */
  readonly serverIds: readonly string[];
  readonly identity: ProxyIdentity;
  readonly clock: Clock;
  /** Connect plus handshake plus verification, in milliseconds. */
  readonly connectTimeoutMs: number;
  /** Told about every failed connect, with the SPIFFE ID the server presented when it got that far. */
  readonly onFailure?: (err: SigilError, presentedId: string | null) => void;
}

export interface UpstreamConnection {
  readonly socket: TLSSocket;
  /** The upstream's verified SPIFFE ID. */
  readonly serverId: string;
  /** Set when asked for (`directReads`): the socket's reads go through it, not its Readable side. */
  readonly reads?: DirectReads;
}

export interface ConnectOptions {
  /**
   * For an opaque pipe: create the socket with a DirectReads (direct-reads.ts), to be handed to
   * pipeSockets. Anything else (undici, node:http2) needs the socket's ordinary 'data' events.
   */
  readonly directReads?: boolean;
}

interface CachedSession {
  readonly session: Buffer;
  readonly serverId: string;
  readonly serverExpiresAtMs: number;
  readonly generation: number;
}

export class UpstreamConnector {
  private cached: CachedSession | undefined;
  private readonly accepted: ReadonlySet<string>;

  constructor(private readonly options: UpstreamConnectorOptions) {
    this.accepted = new Set(options.serverIds);
  }

  /** Resolves with a verified connection; rejects with a SigilError (see errors.ts for the mapping). */
  connect(connectOptions: ConnectOptions = {}): Promise<UpstreamConnection> {
    const { host, port, identity, clock } = this.options;
    const generation = identity.generation;
    const offered = this.usableSession(generation);
    // One per attempt: bytes a refused server sent early die with its socket.
    const reads = connectOptions.directReads === true ? new DirectReads() : undefined;
    return new Promise<UpstreamConnection>((resolve, reject) => {
      const socket = tlsConnect({
        host,
        port,
        secureContext: identity.clientContext,
        session: offered?.session,
        // Verification is ours (verifyPeer, then the ID list); OpenSSL's pooled-CA check and
        // hostname matching do not apply to SPIFFE.
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
        // Honoured by tls.connect (it passes it to the TLSSocket) though absent from the typings.
        allowHalfOpen: true,
        ...(reads === undefined ? {} : { onread: reads.onread }),
      } as ConnectionOptions);
      socket.setNoDelay(true);
      let verified: { serverId: string; expiresAtMs: number } | undefined;
      let pendingSession: Buffer | undefined;
      const remember = (session: Buffer) => {
        if (verified === undefined) {
          pendingSession = session;
          return;
        }
        this.cached = {
          session,
          serverId: verified.serverId,
          serverExpiresAtMs: verified.expiresAtMs,
          generation,
        };
      };
      let presentedId: string | null = null;
      const fail = (err: SigilError) => {
        this.options.onFailure?.(err, presentedId);
        cancelTimer();
        socket.destroy();
        reject(err);
      };
      const cancelTimer = clock.setTimer(this.options.connectTimeoutMs, () =>
        fail(
          new SigilError(
            'ERR_UNAVAILABLE',
            `proxy: upstream ${host}:${port} did not complete mTLS within ${this.options.connectTimeoutMs}ms`,
            { reason: 'timeout' },
          ),
        ),
      );
      socket.on('session', remember);
      socket.once('error', (err) =>
        fail(
          new SigilError('ERR_UNAVAILABLE', `proxy: cannot reach upstream ${host}:${port}: ${err.message}`, {
            reason: 'connect',
            cause: err,
          }),
        ),
      );
      socket.once('secureConnect', () => {
        try {
          verified =
            socket.isSessionReused() && offered !== undefined
              ? { serverId: offered.serverId, expiresAtMs: offered.serverExpiresAtMs }
              : this.verify(socket, (id) => {
                  presentedId = id;
                });
        } catch (err) {
          this.cached = undefined;
          fail(err as SigilError);
          return;
        }
        if (pendingSession !== undefined) remember(pendingSession);
        cancelTimer();
        // Later errors belong to whoever uses the socket (undici, a pipe).
        socket.removeAllListeners('error');
        resolve(
          reads === undefined
            ? { socket, serverId: verified.serverId }
            : { socket, serverId: verified.serverId, reads },
        );
      });
    });
  }

  private verify(
    socket: TLSSocket,
    onVerified: (id: string) => void,
  ): { serverId: string; expiresAtMs: number } {
    const { host, port } = this.options;
    const peer = this.options.identity.verifyPeer(peerChainOf(socket));
    onVerified(peer.spiffeId);
    if (!this.accepted.has(peer.spiffeId)) {
      throw new SigilError(
        'ERR_PERMISSION_DENIED',
        `proxy: upstream ${host}:${port} presented ${quote(peer.spiffeId)}, expected one of ${[...this.accepted].map((id) => quote(id)).join(', ')}`,
        { reason: 'server-id' },
      );
    }
    return { serverId: peer.spiffeId, expiresAtMs: peer.expiresAtMs };
  }

  private usableSession(generation: number): CachedSession | undefined {
    const cached = this.cached;
    if (cached === undefined) return undefined;
    if (cached.generation !== generation || cached.serverExpiresAtMs <= this.options.clock.nowMs()) {
      this.cached = undefined;
      return undefined;
    }
    return cached;
  }
}
