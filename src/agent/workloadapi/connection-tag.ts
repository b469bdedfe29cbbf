// The ONE place that relies on how grpc-js and node:http2 expose an injected connection to a call.
// grpc-js has no API to reach a call's socket, so we give each accepted socket a unique own
// `remoteAddress` property (a Unix socket has none) and read it back with `call.getPeer()`, which
// grpc-js 1.14 builds from `stream.session.socket.remoteAddress` (server-interceptors.ts
// getPeer); node:http2's `session.socket` proxy forwards property reads to our socket.
// connection-tag.test.ts fails if either stops holding; then this file is all that changes.
import type { Socket } from 'node:net';

const TAG_PREFIX = 'sigil-workload-conn:';

/** Marks `socket` with `tag` so calls arriving on it report it as their peer. */
export function tagConnection(socket: Socket, tag: string): void {
  Object.defineProperty(socket, 'remoteAddress', {
    value: TAG_PREFIX + tag,
    configurable: true,
    enumerable: false,
    writable: false,
  });
}

/** The tag of the connection a call arrived on, or undefined when the call did not come through our listener. */
export function connectionTagOf(call: { getPeer(): string }): string | undefined {
  const peer = call.getPeer();
  return peer.startsWith(TAG_PREFIX) ? peer.slice(TAG_PREFIX.length) : undefined;
}
