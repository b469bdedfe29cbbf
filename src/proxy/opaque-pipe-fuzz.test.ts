// Random byte streams both ways through a real Sigil tcp pair (outbound -> mTLS -> inbound -> app),
// written in random pieces at random moments, with readers that stall now and then: what each end
// receives must equal what the other sent, byte for byte, and each end must see the other's FIN.
// Pieces go past one read buffer (direct-reads.ts) and stalls fill write queues, so the paths
// where a read buffer is reused, or must not be, both run.
import { createServer as createNetServer, connect as netConnect, type Socket } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DIRECT_READ_BUFFER_BYTES } from './direct-reads.js';
import { cleanups, listen, startPair, useProxyTestHarness } from './pair.test-support.js';

useProxyTestHarness();

interface Side {
  /** Piece sizes, in order; their bytes come from `seed`. */
  readonly pieces: readonly number[];
  readonly seed: number;
  /** Wait after each piece: 0 = none, 1 = the next turn of the event loop, n = n-1 ms. */
  readonly gaps: readonly number[];
  /** Stop reading for this many ms after each of the first reads (0: keep reading). */
  readonly stallsMs: readonly number[];
}

const pieceArb = fc.oneof(
  fc.integer({ min: 1, max: 64 }),
  fc.integer({ min: DIRECT_READ_BUFFER_BYTES - 8, max: DIRECT_READ_BUFFER_BYTES + 8 }),
  fc.integer({ min: 1, max: 256 * 1024 }),
);
const sideArb: fc.Arbitrary<Side> = fc.record({
  pieces: fc.array(pieceArb, { maxLength: 12 }),
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  gaps: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 12, maxLength: 12 }),
  stallsMs: fc.array(fc.constantFrom(0, 0, 5, 40), { maxLength: 4 }),
});

/** xorshift32 bytes: the same seed gives the same stream, so a failure replays. */
function bytesOf(side: Side): Buffer {
  const out = Buffer.allocUnsafe(side.pieces.reduce((sum, n) => sum + n, 0));
  let x = side.seed;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Writes `side`'s stream in its pieces and gaps, then half-closes. */
async function send(socket: Socket, side: Side, bytes: Buffer): Promise<void> {
  let at = 0;
  for (const [i, size] of side.pieces.entries()) {
    socket.write(bytes.subarray(at, at + size));
    at += size;
    const gap = side.gaps[i] ?? 0;
    if (gap === 1) await nextTurn();
    else if (gap > 1) await sleep(gap - 1);
  }
  socket.end();
}

/** Everything `socket` receives until its peer's FIN, stalling after the first reads as told. */
function receive(socket: Socket, stallsMs: readonly number[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let reads = 0;
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const stallMs = stallsMs[reads++] ?? 0;
      if (stallMs > 0) {
        socket.pause();
        setTimeout(() => socket.resume(), stallMs);
      }
    });
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

describe('opaque tcp pipe, fuzzed', () => {
  it('delivers random streams both ways byte for byte, split and stalled at random', async () => {
    let appSide: { side: Side; received: Promise<Buffer> } | null = null;
    let nextApp: Side | null = null;
    const appConnected: (() => void)[] = [];
    const app = createNetServer({ allowHalfOpen: true }, (socket) => {
      const side = nextApp!;
      appSide = { side, received: receive(socket, side.stallsMs) };
      void send(socket, side, bytesOf(side));
      appConnected.shift()?.();
    });
    const pair = await startPair({ protocol: 'tcp', appPort: await listen(app) });

    await fc.assert(
      fc.asyncProperty(sideArb, sideArb, async (client, server) => {
        nextApp = server;
        const connected = new Promise<void>((resolve) => appConnected.push(resolve));
        const socket = netConnect({
          host: '127.0.0.1',
          port: pair.outbound.address.port,
          allowHalfOpen: true,
        });
        cleanups.push(() => void socket.destroy());
        const clientReceived = receive(socket, client.stallsMs);
        await send(socket, client, bytesOf(client));
        await connected;
        const [atClient, atApp] = await Promise.all([clientReceived, appSide!.received]);
        socket.destroy();
        expect(atApp.equals(bytesOf(client))).toBe(true);
        expect(atClient.equals(bytesOf(server))).toBe(true);
      }),
      { seed: 14, numRuns: 40 },
    );
  }, 60_000);

  it('keeps streams intact when a stalled reader fills every buffer between the ends', async () => {
    // Tens of MB against a reader that stops for a while: the kernel's loopback buffers (a few MB
    // per connection) fill up, writes go partial and queue, and reads continue into new buffers.
    let appReceived: Promise<Buffer> | null = null;
    const big: Side = {
      pieces: fc.sample(fc.integer({ min: 1, max: 512 * 1024 }), { numRuns: 96, seed: 14 }),
      seed: 1_414,
      gaps: [],
      stallsMs: [600, 0, 0, 300],
    };
    const small: Side = {
      pieces: fc.sample(fc.integer({ min: 1, max: 2_000 }), { numRuns: 200, seed: 15 }),
      seed: 1_415,
      gaps: Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? 1 : 0)),
      stallsMs: [],
    };
    for (const [toApp, toClient] of [
      [small, big],
      [big, small],
    ] as const) {
      const app = createNetServer({ allowHalfOpen: true }, (socket) => {
        appReceived = receive(socket, toApp === big ? big.stallsMs : []);
        void send(socket, toClient, bytesOf(toClient));
      });
      const pair = await startPair({ protocol: 'tcp', appPort: await listen(app) });
      const socket = netConnect({ host: '127.0.0.1', port: pair.outbound.address.port, allowHalfOpen: true });
      cleanups.push(() => void socket.destroy());
      const clientReceived = receive(socket, toClient === big ? big.stallsMs : []);
      await send(socket, toApp, bytesOf(toApp));
      const atClient = await clientReceived;
      const atApp = await appReceived!;
      expect(atApp.equals(bytesOf(toApp))).toBe(true);
      expect(atClient.equals(bytesOf(toClient))).toBe(true);
    }
  }, 60_000);
});
