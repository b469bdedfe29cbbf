// pipeSockets on real loopback sockets, without TLS or listeners around it: half-closes are
// forwarded, a slow reader pushes back all the way to the writer with the pipe's memory bounded,
// and the end, reset or error of one side takes the other down, with onClose called once.
import { createHash } from 'node:crypto';
import { type AddressInfo, createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectReads } from './direct-reads.js';
import { pipeSockets } from './pipe.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/**
 * A connected pair of loopback sockets, both allowing half-open, each end ready. With `reads`, the
 * connecting side reads through it (as the listeners create the app or upstream socket).
 */
async function socketPair(reads?: DirectReads): Promise<[Socket, Socket]> {
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => server.close());
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = netConnect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    allowHalfOpen: true,
    ...(reads === undefined ? {} : { onread: reads.onread }),
  });
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const peer = await accepted;
  for (const s of [client, peer]) {
    s.on('error', () => {});
    cleanups.push(() => s.destroy());
  }
  return [client, peer];
}

/**
 * left <-> [pipeLeft  pipeSockets  pipeRight] <-> right: two loopback connections joined by the
 * pipe, as the listeners join a caller's connection and the app's. pipeLeft arrives paused, as an
 * accepted socket does (pauseOnConnect); pipeRight reads directly when `isDirect`.
 */
async function pipedPair(isDirect: boolean) {
  const [left, pipeLeft] = await socketPair();
  const reads = isDirect ? new DirectReads() : undefined;
  const [pipeRight, right] = await socketPair(reads);
  right.resume();
  let closes = 0;
  pipeSockets(pipeLeft, pipeRight, () => closes++, { b: reads ?? null });
  return { left, pipeLeft, pipeRight, right, closes: () => closes };
}

function collect(socket: Socket): { bytes: () => Buffer; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
  return { bytes: () => Buffer.concat(chunks), ended };
}

const closed = (socket: Socket) =>
  socket.destroyed && socket.closed
    ? Promise.resolve()
    : new Promise<void>((r) => socket.once('close', () => r()));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe.each([
  ['stream reads', false],
  ['direct reads on one side', true],
])('pipeSockets, %s', (_name, isDirect) => {
  it('forwards a half-close: the far side sees the end and can still answer', async () => {
    const p = await pipedPair(isDirect);
    const atRight = collect(p.right);
    const atLeft = collect(p.left);
    p.left.end('question');
    await atRight.ended;
    expect(atRight.bytes().toString()).toBe('question');
    // Only left's writing side is shut: the reply still travels back through the pipe.
    expect(p.pipeRight.destroyed).toBe(false);
    p.right.end('answer');
    await atLeft.ended;
    expect(atLeft.bytes().toString()).toBe('answer');
    await Promise.all([closed(p.pipeLeft), closed(p.pipeRight)]);
    expect(p.closes()).toBe(1);
  });

  it.each([
    ['left to right', false],
    ['right to left', true],
  ])(
    'pushes back on a writer whose reader is stalled (%s), with the pipe holding a bounded amount',
    async (_dir, isLeftward) => {
      const piped = await pipedPair(isDirect);
      // Seen from the writer: `left` writes, `pipeLeft` reads it, `pipeRight` queues it for `right`.
      const p = isLeftward
        ? { left: piped.right, pipeLeft: piped.pipeRight, pipeRight: piped.pipeLeft, right: piped.left }
        : piped;
      p.left.resume();
      p.right.pause();
      const chunk = Buffer.alloc(64 * 1024, 7);
      // Far more than loopback's kernel buffers (a few MB per connection) can hold: without
      // backpressure the rest would pile up in the pipe's write queue.
      const totalBytes = 96 * 1024 * 1024;
      let written = 0;
      let sawPressure = false;
      const writeMore = () => {
        while (written < totalBytes) {
          written += chunk.length;
          if (!p.left.write(chunk)) {
            sawPressure = true;
            p.left.once('drain', writeMore);
            return;
          }
        }
        p.left.end();
      };
      writeMore();
      // Let the pipe fill every buffer it can while the reader does nothing.
      let queued = -1;
      for (let i = 0; i < 40 && queued !== p.left.writableLength; i++) {
        queued = p.left.writableLength;
        await sleep(50);
      }
      expect(sawPressure).toBe(true);
      expect(written).toBeLessThan(totalBytes);
      expect(p.pipeRight.writableLength).toBeLessThan(1024 * 1024);
      // The reading side stopped: paused, or (direct reads) its handle no longer reading.
      expect(p.pipeLeft.bytesRead).toBeLessThan(written);
      // The reader catches up: every byte arrives, in order, and the end follows.
      let received = 0;
      const digest = createHash('sha256');
      p.right.on('data', (c: Buffer) => {
        received += c.length;
        digest.update(c);
      });
      const ended = new Promise<void>((resolve) => p.right.once('end', () => resolve()));
      p.right.resume();
      await ended;
      expect(received).toBe(totalBytes);
      const expected = createHash('sha256');
      for (let i = 0; i < totalBytes / chunk.length; i++) expected.update(chunk);
      expect(digest.digest('hex')).toBe(expected.digest('hex'));
    },
    30_000,
  );

  it('ends and then closes the other side when one side is closed, after flushing what it was sent', async () => {
    const p = await pipedPair(isDirect);
    const atRight = collect(p.right);
    p.left.write('last words');
    // The idle timeout closes a pipe this way: by destroying one of its sockets.
    await new Promise<void>((resolve) => p.right.once('data', () => resolve()));
    // Still queued when its partner goes: it must reach `right` before the end does.
    const queued = 'x'.repeat(4 * 1024 * 1024);
    p.pipeRight.write(queued);
    p.pipeLeft.destroy();
    await Promise.all([atRight.ended, closed(p.pipeLeft), closed(p.pipeRight)]);
    expect(atRight.bytes().toString()).toBe(`last words${queued}`);
    expect(p.closes()).toBe(1);
  });

  it('tears both sides down when one is reset', async () => {
    const p = await pipedPair(isDirect);
    p.right.write('hello');
    await new Promise<void>((resolve) => p.left.once('data', () => resolve()));
    const leftEnded = new Promise<void>((resolve) => p.left.once('end', () => resolve()));
    p.right.resetAndDestroy();
    await Promise.all([closed(p.pipeLeft), closed(p.pipeRight), leftEnded]);
    expect(p.closes()).toBe(1);
  });

  it('tears both sides down on an error of either', async () => {
    const p = await pipedPair(isDirect);
    const ends = [p.left, p.right].map((s) => new Promise<void>((resolve) => s.once('end', () => resolve())));
    p.pipeRight.destroy(new Error('boom'));
    await Promise.all([closed(p.pipeLeft), closed(p.pipeRight), ...ends]);
    expect(p.closes()).toBe(1);
  });
});

describe('pipeSockets with direct reads', () => {
  it('forwards first what was read before the pipe was attached (a server that speaks first)', async () => {
    const [left, pipeLeft] = await socketPair();
    const reads = new DirectReads();
    const [pipeRight, right] = await socketPair(reads);
    right.write('greeting;');
    while (pipeRight.bytesRead === 0) await sleep(5);
    pipeSockets(pipeLeft, pipeRight, () => {}, { b: reads });
    const atLeft = collect(left);
    right.end('rest');
    await atLeft.ended;
    expect(atLeft.bytes().toString()).toBe('greeting;rest');
  });
});
