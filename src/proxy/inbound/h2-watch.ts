// The HTTP/2 relay's timeouts, per caller session: a session with no open stream for idle_timeout
// is closed (GOAWAY), and a stream with no DATA either way for stream_idle_timeout is reset
// (CANCEL). One timer per session on the injected Clock checks both every half of the shorter
// timeout, so a timeout fires between 1x and 1.5x its value; streams only bump a counter per DATA
// chunk, and nothing is armed per stream. Envoy's semantics: a session's idle time counts while it
// has no stream, whatever control frames (PING) it sends.
import { constants, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { checkEveryHalfTimeout } from '../check-every-half-timeout.js';
import type { ListenerGuard } from '../guard.js';
import type { VerifiedPeer } from '../identity.js';

interface StreamActivity {
  readonly stream: ServerHttp2Stream;
  /** DATA chunks either way so far; bumped by the relay. */
  progress: number;
  /** `progress` at the last check, and since when it has not moved. */
  seen: number;
  quietSinceMs: number;
}

export class SessionWatch {
  private readonly streams = new Set<StreamActivity>();
  /** When the last stream closed, or the session opened. */
  private idleSinceMs: number;

  constructor(
    private readonly session: ServerHttp2Session,
    /** The verified caller; null for a plaintext one. */
    readonly peer: VerifiedPeer | null,
    /** Its limits and clock are the listener's. */
    private readonly guard: ListenerGuard,
  ) {
    this.idleSinceMs = guard.clock.nowMs();
    const { idleTimeoutMs, streamIdleTimeoutMs } = guard.limits;
    checkEveryHalfTimeout(
      guard.clock,
      Math.min(idleTimeoutMs, streamIdleTimeoutMs),
      session,
      () => session.closed || session.destroyed || this.closeIfIdle(),
    );
  }

  /** Starts watching `stream`; the returned function records activity on it (call it per DATA chunk). */
  track(stream: ServerHttp2Stream): () => void {
    const activity: StreamActivity = { stream, progress: 0, seen: 0, quietSinceMs: this.guard.clock.nowMs() };
    this.streams.add(activity);
    stream.once('close', () => {
      this.streams.delete(activity);
      if (this.streams.size === 0) this.idleSinceMs = this.guard.clock.nowMs();
    });
    return () => {
      activity.progress++;
    };
  }

  /** Resets the streams idle too long; closes the session if it has been without any. */
  private closeIfIdle(): boolean {
    const nowMs = this.guard.clock.nowMs();
    const { idleTimeoutMs, streamIdleTimeoutMs } = this.guard.limits;
    const source_id = this.peer?.spiffeId ?? null;
    if (this.streams.size === 0 && nowMs - this.idleSinceMs >= idleTimeoutMs) {
      this.guard.timedOut('idle', { source_id, timeout_ms: idleTimeoutMs });
      this.session.close();
      return true;
    }
    for (const activity of this.streams) {
      if (activity.progress !== activity.seen) {
        activity.seen = activity.progress;
        activity.quietSinceMs = nowMs;
      } else if (nowMs - activity.quietSinceMs >= streamIdleTimeoutMs) {
        this.guard.timedOut('stream-idle', { source_id, timeout_ms: streamIdleTimeoutMs });
        activity.stream.close(constants.NGHTTP2_CANCEL);
      }
    }
    return false;
  }
}
