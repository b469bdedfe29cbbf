// Caps a listening server's open connections (the proxy's listeners, the server's agent API and
// mTLS admin API): node:net closes each connection past the cap before reading a byte, and emits
// `drop`. A failed accept (EMFILE/ENFILE, when the caps of every listener add up past the
// descriptor limit) is reported too: libuv has already lost that connection, and node:net, finding
// no `error` listener, would throw it and end the process. Counting and logging are the caller's.
import type { Server } from 'node:net';

export interface ConnectionCapHooks {
  /** A connection past the cap, closed unread; the address is absent when Node could not read it. */
  onDrop(remoteAddress: string | undefined): void;
  /** An `error` on the listening server: a failed accept, never anything listen() itself reports. */
  onAcceptError(err: NodeJS.ErrnoException): void;
}

export function capConnections(server: Server, maxConnections: number, hooks: ConnectionCapHooks): void {
  server.maxConnections = maxConnections;
  server.on('drop', (data?: { remoteAddress?: string }) => hooks.onDrop(data?.remoteAddress));
  server.on('error', (err: NodeJS.ErrnoException) => {
    // Before the bind, an error (EADDRINUSE…) belongs to the caller's listen handler, which rejects.
    if (!server.listening) return;
    hooks.onAcceptError(err);
  });
}
