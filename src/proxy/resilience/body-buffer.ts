// Request bodies kept in memory to be sent more than once: by the retry layer (every try) and by
// route mirroring (the upstream and the shadow). Only a body of declared length up to
// MAX_RETRY_BODY_BYTES is kept; a larger one, or one of unknown length, streams once.
import type { Readable } from 'node:stream';
import { MAX_RETRY_BODY_BYTES } from './retry-policy.js';

/** The request's `Content-Length`, or null when absent or not a valid length. */
export function contentLength(headers: readonly string[]): number | null {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length === 14 && headers[i]!.toLowerCase() === 'content-length') {
      const value = Number(headers[i + 1]);
      return Number.isSafeInteger(value) && value >= 0 ? value : null;
    }
  }
  return null;
}

/** Reads a body of known `length` (≤ MAX_RETRY_BODY_BYTES) into one Buffer; null if it ended short or failed. */
export function bufferBody(body: Readable, length: number, done: (buffered: Buffer | null) => void): void {
  const chunks: Buffer[] = [];
  let received = 0;
  let isDone = false;
  const finish = (buffered: Buffer | null) => {
    if (isDone) return;
    isDone = true;
    done(buffered);
  };
  body.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > MAX_RETRY_BODY_BYTES) {
      body.destroy();
      finish(null);
      return;
    }
    chunks.push(chunk);
  });
  body.once('end', () => finish(received === length ? Buffer.concat(chunks, received) : null));
  body.once('error', () => finish(null));
  body.once('close', () => finish(received === length ? Buffer.concat(chunks, received) : null));
}
