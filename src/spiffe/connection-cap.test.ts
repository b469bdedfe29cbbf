import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { capConnections } from './connection-cap.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A capped server on a loopback port, and what its hooks were told. */
function cappedServer(maxConnections: number) {
  const drops: Array<string | undefined> = [];
  const acceptErrors: string[] = [];
  const server = createServer((socket) => socket.resume());
  servers.push(server);
  capConnections(server, maxConnections, {
    onDrop: (remote) => drops.push(remote),
    onAcceptError: (err) => acceptErrors.push(err.code ?? err.message),
  });
  return { server, drops, acceptErrors };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}

describe('capConnections', () => {
  it('reports a failed accept on a listening server instead of throwing it', async () => {
    const { server, acceptErrors } = cappedServer(10);
    await listen(server);
    const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' });
    expect(() => server.emit('error', emfile)).not.toThrow();
    expect(acceptErrors).toEqual(['EMFILE']);
  });

  it("leaves an error before the bind to listen's own handler", async () => {
    const { server: first } = cappedServer(10);
    const port = await listen(first);
    const { server: second, acceptErrors } = cappedServer(10);
    const failure = new Promise<NodeJS.ErrnoException>((resolve) => {
      second.once('error', resolve);
      second.listen(port, '127.0.0.1');
    });
    expect((await failure).code).toBe('EADDRINUSE');
    expect(acceptErrors).toEqual([]);
  });

  it('closes the connection past the cap and reports it with its address', async () => {
    const { server, drops } = cappedServer(1);
    const port = await listen(server);
    const open = () =>
      new Promise<Socket>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => resolve(socket));
        socket.on('error', () => {
          // A reset of the dropped socket: its close is what this test waits for.
        });
        socket.resume();
      });
    const held = await open();
    try {
      // The kernel's accept queue is FIFO, so the server counts the first before it sees the second.
      const over = await open();
      await new Promise((resolve) => over.once('close', resolve));
      expect(drops).toEqual(['127.0.0.1']);
      expect(held.destroyed).toBe(false);
    } finally {
      held.destroy();
    }
  });
});
