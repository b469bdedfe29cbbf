// Joins two sockets both ways for the opaque (tcp, http2) paths. Each direction is a 'data' -> write
// loop with its own backpressure (pause on a full write buffer, resume on 'drain') rather than
// stream.pipe, which adds its bookkeeping (awaitDrain sets, unpipe and dest-close listeners) to every
// chunk and connection. Half-closes (FIN) are forwarded: the end of one side's reads ends the other
// side's writes. Once one side is fully closed the other is ended, and destroyed when its writes
// have flushed, so no socket outlives its partner. An error on either tears down both. A socket
// created with a DirectReads' `onread` (direct-reads.ts) has its reads forwarded by it instead.
import type { Duplex } from 'node:stream';
import type { DirectReads } from './direct-reads.js';

/** The DirectReads a side was created with, if any. */
export interface PipeReads {
  readonly a?: DirectReads | null;
  readonly b?: DirectReads | null;
}

export function pipeSockets(a: Duplex, b: Duplex, onClose: () => void, reads: PipeReads = {}): void {
  let isDone = false;
  const finish = () => {
    if (isDone) return;
    isDone = true;
    onClose();
  };
  const closeOther = (other: Duplex) => () => {
    if (other.destroyed) return finish();
    other.end();
    if (other.writableFinished) other.destroy();
    else other.once('finish', () => other.destroy());
    finish();
  };
  const fail = () => {
    a.destroy();
    b.destroy();
    finish();
  };
  // The errors end here: each is a peer going away, and the close handlers account for it.
  a.on('error', fail);
  b.on('error', fail);
  a.once('close', closeOther(b));
  b.once('close', closeOther(a));
  forward(a, b, reads.a ?? null);
  forward(b, a, reads.b ?? null);
}

/** Copies `from`'s bytes to `to` until `from` ends, then ends `to` (a half-close, not a close). */
function forward(from: Duplex, to: Duplex, reads: DirectReads | null): void {
  if (reads !== null) {
    reads.attach(from, to);
  } else {
    from.on('data', (chunk: Buffer) => {
      // A write past the buffer's mark still queues its chunk; reading stops until the queue
      // drains, so a slow reader holds at most one read's worth over the mark.
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => from.resume());
    // Accepted sockets arrive paused (pauseOnConnect, or the accept path's peek at the first byte).
    from.resume();
  }
  // Direct reads end the same way: the end of the stream still comes through the Readable side.
  from.once('end', () => to.end());
}
