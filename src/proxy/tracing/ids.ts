// Trace and span IDs from random bytes drawn in batches: one crypto.randomFillSync call fills a pool
// that serves a few hundred IDs, since a syscall-backed call per ID would cost more than the rest
// of the span. The byte source is injected so tests can make IDs repeatable.
import { randomFillSync } from 'node:crypto';

/** Fills `buffer` with random bytes. */
export type RandomFill = (buffer: Uint8Array) => void;

/** Bytes drawn at once: 256 span IDs, or 170 trace and span ID pairs. */
const POOL_BYTES = 2048;

export class IdSource {
  private readonly pool = Buffer.allocUnsafe(POOL_BYTES);
  private offset = POOL_BYTES;

  constructor(private readonly fill: RandomFill = randomFillSync) {}

  /** 32 lowercase hex digits, never all zero (the W3C spec makes that ID invalid). */
  traceId(): string {
    return this.hex(16);
  }

  /** 16 lowercase hex digits, never all zero. */
  spanId(): string {
    return this.hex(8);
  }

  private hex(bytes: number): string {
    for (;;) {
      if (this.offset + bytes > POOL_BYTES) {
        this.fill(this.pool);
        this.offset = 0;
      }
      const start = this.offset;
      this.offset += bytes;
      for (let i = start; i < start + bytes; i++) {
        if (this.pool[i] !== 0) return this.pool.toString('hex', start, start + bytes);
      }
    }
  }
}
