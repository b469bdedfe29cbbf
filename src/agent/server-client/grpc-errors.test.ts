import net from 'node:net';
import type { ServiceError } from '@grpc/grpc-js';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseTrustDomain } from '../../spiffe/id.js';
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

  it('reach the agent without the empty note when the server is down', async () => {
    const connection = new ServerConnection({
      addresses: [`127.0.0.1:${await closedPort()}`],
      trustDomain: parseTrustDomain('example.org'),
      insecureBootstrap: true,
      nowMs: () => Date.now(),
      logger: pino({ level: 'silent' }),
    });
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
});
