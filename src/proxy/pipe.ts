// Joins two sockets both ways for the opaque (tcp, http2) paths. stream.pipe gives backpressure and
// forwards half-closes (FIN); once one side is fully closed the other is ended, and destroyed when
// its writes have flushed, so no socket outlives its partner. An error on either tears down both.
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
  a.pipe(b);
  b.pipe(a);
}
