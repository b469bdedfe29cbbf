// Joins two sockets both ways for the opaque (tcp, http2) paths, with backpressure and half-closes
// (FIN) forwarded; once one side is fully closed the other is ended, and destroyed when its writes
// have flushed, so no socket outlives its partner. An error on either tears down both.
import type { Duplex } from 'node:stream';

export function pipeSockets(a: Duplex, b: Duplex, onClose: () => void): void {
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
  forward(a, b);
  forward(b, a);
}

/**
 * What stream.pipe does for two sockets, without its per-chunk bookkeeping (unpipe tracking, drain
 * counters, extra listeners): every read is written straight on, reading pauses while the other
 * side's buffer is full, and the end of input becomes an end of output. On the opaque paths this
 * per-chunk work is most of the JavaScript a request costs.
 */
function forward(from: Duplex, to: Duplex): void {
  const resume = () => from.resume();
  from.on('data', (chunk: Buffer) => {
    if (to.write(chunk)) return;
    from.pause();
    to.once('drain', resume);
  });
  from.once('end', () => to.end());
  // The accept and connect paths may hand over a paused socket; a data listener alone does not
  // start one that was paused explicitly.
  from.resume();
}
