// resetCall against the grpc-js we ship: a server stream whose client stopped reading cannot end with
// a status (it queues behind the unsent messages); a reset ends it at once on both sides.
import {
  Client,
  credentials,
  Server,
  ServerCredentials,
  type ServerWritableStream,
  status,
} from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { resetCall } from './reset-call.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('resetCall', () => {
  it('ends a stalled server stream at once: the server sees it cancelled, the client an error', async () => {
    let stalled!: (call: ServerWritableStream<Buffer, Buffer>) => void;
    const full = new Promise<ServerWritableStream<Buffer, Buffer>>((resolve) => {
      stalled = resolve;
    });
    const server = new Server();
    server.addService(
      {
        Watch: {
          path: '/test.Test/Watch',
          requestStream: false,
          responseStream: true,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      {
        Watch: (call: ServerWritableStream<Buffer, Buffer>) => {
          // Write until the buffer is full: the client below reads nothing.
          while (call.write(Buffer.alloc(64 * 1024))) {}
          stalled(call);
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      ),
    );
    cleanups.push(() => server.forceShutdown());
    const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
    cleanups.push(() => client.close());
    const stream = client.makeServerStreamRequest(
      '/test.Test/Watch',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
    );
    stream.pause();
    const clientError = new Promise<{ code: status }>((resolve) => stream.on('error', resolve));

    const call = await full;
    const cancelled = new Promise<void>((resolve) => call.on('cancelled', () => resolve()));
    expect(resetCall(call)).toBe(true);
    await cancelled;
    expect((await clientError).code).toBe(status.CANCELLED);
    expect(resetCall(call)).toBe(false);
  });
});
