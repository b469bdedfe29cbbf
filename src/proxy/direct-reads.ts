// Reads of one pipe socket that skip its Readable stream: the socket is created with net's `onread`
// option (net.connect, or tls.connect without `socket`), so each read lands in a buffer reused
// across reads and is written straight to the pipe partner. The default read path allocates a
// fresh buffer per read (64 KiB for TCP, then shrunk), wraps it in a new ArrayBuffer and runs it
// through push/'data'; on the opaque TCP bench that path was the larger part of the JavaScript
// cost per request. Only sockets we create can read this way: accepted sockets, and TLS sockets
// wrapped around one, take no `onread`, so each sidecar reads one side of a pipe directly.
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';

/**
 * Bytes per read: one TLS record's worth of plaintext (2^14). Held for the socket's life, so it is
 * a per-connection cost; bulk reads from a plaintext app take four reads where the default takes one.
 */
export const DIRECT_READ_BUFFER_BYTES = 16 * 1024;

export class DirectReads {
  /** The socket's `onread` option. */
  readonly onread: {
    readonly buffer: () => Buffer;
    readonly callback: (bytes: number, buffer: Buffer) => boolean;
  };
  private buffer: Buffer | null = null;
  private to: Duplex | null = null;
  /** Whether a chunk `to` accepts while idle is copied out before write() returns (see onRead). */
  private isCopiedOnWrite = false;
  /** Reads that came before the pipe was attached (a server that speaks first); copies. */
  private early: Buffer[] = [];

  constructor() {
    // The buffer function runs after every read: it hands back the same buffer unless the last
    // chunk is still referenced by `to`'s write queue, in which case the next read gets a new one.
    this.onread = {
      buffer: () => {
        this.buffer ??= Buffer.allocUnsafeSlow(DIRECT_READ_BUFFER_BYTES);
        return this.buffer;
      },
      callback: (bytes, buffer) => this.onRead(bytes, buffer),
    };
  }

  /** Starts writing `from`'s reads to `to`; reads are paused while `to`'s write queue is full. */
  attach(from: Duplex, to: Duplex): void {
    this.to = to;
    // TLSWrap encrypts (or copies) a chunk inside write() when it goes straight to the handle.
    this.isCopiedOnWrite = to instanceof TLSSocket;
    to.on('drain', () => from.resume());
    const early = this.early;
    this.early = [];
    for (const chunk of early) if (!to.write(chunk)) from.pause();
  }

  private onRead(bytes: number, buffer: Buffer): boolean {
    const to = this.to;
    if (to === null) {
      this.early.push(Buffer.from(buffer.subarray(0, bytes)));
      return true;
    }
    const wasIdle = to.writableLength === 0;
    const hasRoom = to.write(buffer.subarray(0, bytes));
    // The chunk still points into our buffer if it was queued behind another write, or if a
    // plaintext socket could not send it all at once (libuv keeps the rest by reference). The
    // buffer then belongs to that queue; the next read gets a new one.
    if (!wasIdle || (!this.isCopiedOnWrite && to.writableLength > 0)) this.buffer = null;
    // false stops reading (net's onread contract) until 'drain' resumes it.
    return hasRoom;
  }
}
