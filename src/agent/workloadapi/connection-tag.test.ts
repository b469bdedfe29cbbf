// Pins the grpc-js / node:http2 behaviour connection-tag.ts relies on: a call on an injected socket
// reports that socket's own `remoteAddress` through getPeer(). If a grpc-js upgrade breaks this,
// this test fails, and connection-tag.ts is the one file to change.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  Client,
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { connectionTagOf, tagConnection } from './connection-tag.js';

const METHOD = {
  path: '/pin.Test/Peer',
  requestStream: false,
  responseStream: false,
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function callPeer(target: string): Promise<string> {
  // A local subchannel pool: each call gets its own connection, so each lands on a new socket.
  const client = new Client(target, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  cleanups.push(() => client.close());
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      METHOD.path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      new Metadata(),
      (err, res) => (err ? reject(err) : resolve(res!.toString())),
    );
  });
}

function serverReportingTag(): Server {
  const server = new Server({ 'grpc.enable_channelz': 0 });
  server.addService(
    { Peer: METHOD },
    {
      Peer: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) =>
        callback(null, Buffer.from(connectionTagOf(call) ?? '<untagged>')),
    },
  );
  cleanups.push(() => server.forceShutdown());
  return server;
}

describe('connection tags through grpc-js (pins grpc-js internals)', () => {
  it('a call on an injected, tagged Unix socket reports that socket tag via getPeer()', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sigil-pin-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socketPath = path.join(dir, 'pin.sock');
    const server = serverReportingTag();
    const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
    let n = 0;
    const net = createServer((socket) => {
      tagConnection(socket, `conn-${n++}`);
      injector.injectConnection(socket);
    });
    cleanups.push(() => net.close());
    await new Promise<void>((resolve) => net.listen(socketPath, resolve));
    expect(await callPeer(`unix://${socketPath}`)).toBe('conn-0');
    expect(await callPeer(`unix://${socketPath}`)).toBe('conn-1');
  });

  it('a call that did not come through a tagged socket has no tag', async () => {
    const server = serverReportingTag();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    expect(await callPeer(`127.0.0.1:${port}`)).toBe('<untagged>');
  });
});
