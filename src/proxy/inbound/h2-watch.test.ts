import { EventEmitter } from 'node:events';
import type { ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../spiffe/clock.js';
import { createListenerGuard } from '../guard.js';
import { DEFAULT_LIMITS } from '../limits.js';
import { createProxyMetrics } from '../metrics.js';
import { RecordingLogger } from '../testing.test-support.js';
import { SessionWatch } from './h2-watch.js';

class FakeSession extends EventEmitter {
  closed = false;
  destroyed = false;
  close() {
    this.closed = true;
    this.emit('close');
  }
}

class FakeStream extends EventEmitter {
  rstCode: number | undefined;
  close(code: number) {
    this.rstCode = code;
    this.emit('close');
  }
}

function watched() {
  const clock = new ManualClock();
  const logger = new RecordingLogger();
  const limits = { ...DEFAULT_LIMITS, idleTimeoutMs: 10_000, streamIdleTimeoutMs: 20_000 };
  const guard = createListenerGuard({
    listener: 'grpc',
    limits,
    metrics: createProxyMetrics(new Registry()),
    logger,
    clock,
  });
  const session = new FakeSession();
  const watch = new SessionWatch(session as unknown as ServerHttp2Session, null, guard);
  const open = () => {
    const stream = new FakeStream();
    return { stream, bump: watch.track(stream as unknown as ServerHttp2Stream) };
  };
  return { clock, logger, session, open };
}

describe('SessionWatch', () => {
  it('closes a session that never opens a stream after idle_timeout (1x to 1.5x)', async () => {
    const { clock, session, logger } = watched();
    await clock.advance(9_999);
    expect(session.closed).toBe(false);
    await clock.advance(5_001);
    expect(session.closed).toBe(true);
    expect(logger.find('Closed on timeout')[0]!.fields).toMatchObject({ listener: 'grpc', timeout: 'idle' });
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps a session open while it has a stream, and counts idle time from the last one closing', async () => {
    const { clock, session, open } = watched();
    const { stream, bump } = open();
    for (let i = 0; i < 8; i++) {
      await clock.advance(5_000);
      bump();
    }
    expect(session.closed).toBe(false);
    stream.emit('close');
    await clock.advance(9_999);
    expect(session.closed).toBe(false);
    await clock.advance(5_001);
    expect(session.closed).toBe(true);
  });

  it('resets a stream with no DATA for stream_idle_timeout, and only that one', async () => {
    const { clock, session, open } = watched();
    const quiet = open();
    const busy = open();
    for (let i = 0; i < 5; i++) {
      await clock.advance(5_000);
      busy.bump();
    }
    expect(quiet.stream.rstCode).toBe(8); // NGHTTP2_CANCEL
    expect(busy.stream.rstCode).toBeUndefined();
    expect(session.closed).toBe(false);
  });
});
