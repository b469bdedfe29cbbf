import net from 'node:net';
import type { ServiceError } from '@grpc/grpc-js';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseTrustDomain } from '../../spiffe/id.js';
import { generateKey } from '../../spiffe/keys.js';
import { encodePem } from '../../spiffe/pem.js';
import { createCaCertificate } from '../../spiffe/x509-authority.js';
import { ServerConnection } from './connection.js';
import { withoutEmptyResolutionNote } from './grpc-errors.js';

/** A port nobody listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('grpc-js error texts', () => {
  it('lose an empty "Resolution note:" and keep one that says something', () => {
    expect(
      withoutEmptyResolutionNote('No connection established. Last error: ECONNREFUSED. Resolution note: '),
    ).toBe('No connection established. Last error: ECONNREFUSED');
    expect(withoutEmptyResolutionNote('No addresses resolved. Resolution note: DNS says no')).toBe(
      'No addresses resolved. Resolution note: DNS says no',
    );
  });

  /** A connection to a port nobody listens on. */
  async function connectionToNobody(): Promise<ServerConnection> {
    return new ServerConnection({
      addresses: [`127.0.0.1:${await closedPort()}`],
      trustDomain: parseTrustDomain('example.org'),
      insecureBootstrap: true,
      nowMs: () => Date.now(),
      logger: pino({ level: 'silent' }),
    });
  }

  it('reach the agent without the empty note when the server is down', async () => {
    const connection = await connectionToNobody();
    const { stream, close } = connection.attestStream(true);
    try {
      const err = await new Promise<ServiceError>((resolve) => stream.on('error', resolve));
      expect(err.details).toMatch(/No connection established/);
      expect(err.details).not.toMatch(/Resolution note/);
      expect(err.message).not.toMatch(/Resolution note/);
    } finally {
      close();
    }
  });

  it('reach the agent without the empty note from the attested client too (unary calls, SyncEntries)', async () => {
    const connection = await connectionToNobody();
    // Any certificate will do: the connection fails before a handshake.
    const key = generateKey('ec-p256');
    const nowMs = Date.now();
    const der = await createCaCertificate({
      trustDomain: parseTrustDomain('example.org'),
      key,
      notBeforeMs: nowMs - 60_000,
      notAfterMs: nowMs + 3_600_000,
    });
    const pem = encodePem('CERTIFICATE', der);
    connection.setBundlePem(pem);
    connection.setIdentity(pem, key.export({ type: 'pkcs8', format: 'pem' }) as string);
    try {
      const unary = await connection.fetchBundles().then(
        () => expect.unreachable('FetchBundles reached nobody'),
        (err: ServiceError) => err,
      );
      const stream = connection.syncEntries({ sinceRevision: 0 });
      const streamed = await new Promise<ServiceError>((resolve) => stream.on('error', resolve));
      for (const err of [unary, streamed]) {
        expect(err.details).toMatch(/No connection established/);
        expect(err.details).not.toMatch(/Resolution note/);
        expect(err.message).not.toMatch(/Resolution note/);
      }
    } finally {
      connection.close();
    }
  });
});
