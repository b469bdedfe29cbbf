// HTTP/2 client sessions to one upstream service, for the outbound gRPC relay (h2-streams.ts). Each
// session runs over a connection the service balanced and verified (UpstreamService.connect():
// mTLS, SPIFFE ID checked, no app byte before). A stream goes on the first session with room under
// the peer's SETTINGS_MAX_CONCURRENT_STREAMS; when all are full, a new session is opened, up to
// MAX_SESSIONS; past that the least busy takes it and nghttp2 holds the stream until one closes.
// A session that received GOAWAY takes no new stream and is replaced; one that closes is dropped;
// all are retired (closed once their streams end) when our SVID rotates.
// An idle session (no stream) is closed after SESSION_IDLE_MS, like the HTTP/1.1 keep-alive pool.
import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Clock } from '../../spiffe/clock.js';
import { checkEveryHalfTimeout } from '../check-every-half-timeout.js';

/** What the pool needs of an upstream service. */
export interface SessionTarget {
  readonly name: string;
  connect(): Promise<{ readonly socket: Duplex; readonly serverId: string }>;
}

/** Sessions per service: enough to spread over a few endpoints, few enough to stay cheap. */
export const MAX_SESSIONS = 4;
/** Longer than nothing, shorter than the upstream inbound's 60s idle timeout: we close first. */
export const SESSION_IDLE_MS = 30_000;
/** Streams waiting for a session to connect; past this they are refused (the service is unreachable or slow). */
export const MAX_WAITING = 1_024;

/** Called once with a session that has room, or with the reason there is none. */
export type SessionWaiter = (session: ClientHttp2Session | null, err: unknown) => void;

interface PooledSession {
  readonly session: ClientHttp2Session;
  readonly serverId: string;
  /** Streams open on it, counted by h2-streams.ts through `opened`/`closed`. */
  streams: number;
  /** GOAWAY received or closing: no new streams. */
  draining: boolean;
  idleSinceMs: number;
}

export class UpstreamSessions {
  private readonly sessions: PooledSession[] = [];
  private readonly byHandle = new WeakMap<ClientHttp2Session, PooledSession>();
  private waiting: SessionWaiter[] = [];
  private connecting = 0;

  constructor(
    private readonly target: SessionTarget,
    private readonly clock: Clock,
    private readonly onSessionError: (service: string, err: Error) => void,
    /** Called when the last session closed with nothing connecting or waiting: the pool may go. */
    private readonly onEmpty: () => void = () => {},
  ) {}

  /** Calls `waiter` with a session now if one has room, else once a new one is up. */
  acquire(waiter: SessionWaiter): void {
    let best: PooledSession | undefined;
    for (const pooled of this.sessions) {
      if (pooled.draining) continue;
      if (pooled.streams < peerLimit(pooled.session)) {
        waiter(pooled.session, null);
        return;
      }
      if (best === undefined || pooled.streams < best.streams) best = pooled;
    }
    if (this.openCount() + this.connecting < MAX_SESSIONS) {
      if (this.waiting.length >= MAX_WAITING) {
        waiter(null, new Error(`too many streams waiting for a session to ${this.target.name}`));
        return;
      }
      this.waiting.push(waiter);
      // One session in the making serves every stream waiting for it.
      if (this.connecting === 0) this.open();
      return;
    }
    if (best !== undefined) {
      waiter(best.session, null);
      return;
    }
    // Every slot is connecting: wait for one of them.
    if (this.waiting.length >= MAX_WAITING) {
      waiter(null, new Error(`too many streams waiting for a session to ${this.target.name}`));
      return;
    }
    this.waiting.push(waiter);
  }

  /** A stream was opened on `session`. */
  opened(session: ClientHttp2Session): void {
    const pooled = this.byHandle.get(session);
    if (pooled !== undefined) pooled.streams++;
  }

  /** A stream of `session` closed. */
  closed(session: ClientHttp2Session): void {
    const pooled = this.byHandle.get(session);
    if (pooled === undefined) return;
    pooled.streams--;
    if (pooled.streams === 0) pooled.idleSinceMs = this.clock.nowMs();
  }

  /** Sessions open (for tests and /config). */
  get size(): number {
    return this.sessions.length;
  }

  /**
   * Our SVID rotated: open sessions take no new streams and close once their streams end (the
   * HTTP/1.1 pools are renewed the same way), so new streams go over connections made with the
   * new identity.
   */
  retire(): void {
    for (const pooled of this.sessions) {
      if (pooled.draining) continue;
      pooled.draining = true;
      pooled.session.close();
    }
  }

  close(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const waiter of waiting) waiter(null, new Error('proxy closing'));
    for (const pooled of this.sessions.splice(0)) pooled.session.destroy();
  }

  private emptied(): void {
    if (this.sessions.length === 0 && this.connecting === 0 && this.waiting.length === 0) this.onEmpty();
  }

  private openCount(): number {
    let open = 0;
    for (const pooled of this.sessions) if (!pooled.draining) open++;
    return open;
  }

  private open(): void {
    this.connecting++;
    this.target.connect().then(
      (connection) => {
        this.connecting--;
        const pooled = this.adopt(connection.socket, connection.serverId);
        const waiting = this.waiting;
        this.waiting = [];
        // The peer's SETTINGS are not in yet: the first batch all goes on the new session, and
        // nghttp2 holds what exceeds its limit once SETTINGS arrive.
        for (const waiter of waiting) waiter(pooled.session, null);
      },
      (err: unknown) => {
        this.connecting--;
        const waiting = this.waiting;
        this.waiting = [];
        for (const waiter of waiting) waiter(null, err);
        this.emptied();
      },
    );
  }

  private adopt(socket: Duplex, serverId: string): PooledSession {
    // The connection is verified mTLS; HTTP/2 runs inside it whatever ALPN said (the inbound
    // listener's protocol, not ALPN, decides there too).
    const session = h2connect(`http://${this.target.name}`, { createConnection: () => socket });
    const pooled: PooledSession = {
      session,
      serverId,
      streams: 0,
      draining: false,
      idleSinceMs: this.clock.nowMs(),
    };
    this.sessions.push(pooled);
    this.byHandle.set(session, pooled);
    session.on('goaway', () => {
      pooled.draining = true;
    });
    // Failures also surface on the streams opened on it; the session is replaced on next use.
    session.on('error', (err) => this.onSessionError(this.target.name, err));
    session.once('close', () => {
      pooled.draining = true;
      const at = this.sessions.indexOf(pooled);
      if (at !== -1) this.sessions.splice(at, 1);
      this.emptied();
    });
    checkEveryHalfTimeout(this.clock, SESSION_IDLE_MS, session, () => {
      if (session.closed || session.destroyed) return true;
      if (pooled.streams > 0 || this.clock.nowMs() - pooled.idleSinceMs < SESSION_IDLE_MS) return false;
      pooled.draining = true;
      session.close();
      return true;
    });
    return pooled;
  }
}

/** The peer's SETTINGS_MAX_CONCURRENT_STREAMS (node reports 2^32-1 until SETTINGS arrive). */
function peerLimit(session: ClientHttp2Session): number {
  return session.remoteSettings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
}
