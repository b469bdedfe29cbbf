// Attacks on the agent API listener with real sockets against a real sigil-server: silent TCP, TLS
// then silence, an HTTP/2 preface then silence, a call whose request never comes, more connections
// than the caps allow, and a signing flood from an attested agent. Every phase of a connection has a
// deadline and their number is capped, while a live agent's sync stream is never cut.
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { type ServiceError, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attestWithToken,
  bundlePemOf,
  cliJson,
  generateToken,
  rejectionOf,
  serverLog,
} from '../support/agent-api-client.js';
import { waitFor } from '../support/agent-harness.js';
import type { ServerProcess } from '../support/harness.js';
import { msUntilClosed, startLimitedServer } from '../support/limited-server.js';

const TD = 'spiffe://example.org';

describe('agent API connection deadlines', () => {
  // Short deadlines; what each test checks is that the connection is gone shortly after its own.
  const HANDSHAKE_MS = 1_000;
  const IDLE_MS = 2_000;
  const REQUEST_MS = 1_000;
  /** Slack for a loaded 2-core machine: timers fire late, never early. */
  const SLACK_MS = 3_000;
  let limited: ServerProcess;
  let host: string;
  let port: number;

  beforeAll(async () => {
    limited = await startLimitedServer({
      agent_api: {
        handshake_timeout: '1s',
        idle_timeout: '2s',
        request_timeout: '1s',
        sign_rate: 5,
        sign_burst: 5,
      },
    });
    ({ host, port } = limited.agentApi);
  });
  afterAll(async () => {
    await limited?.stop();
  });

  it('closes a silent TCP connection at the handshake timeout', async () => {
    const socket = net.connect(port, host);
    socket.on('error', () => {});
    // Flowing, so the end of the stream is noticed (a paused socket never sees the server close).
    socket.resume();
    const ms = await msUntilClosed(socket, HANDSHAKE_MS + SLACK_MS);
    expect(ms).toBeGreaterThanOrEqual(HANDSHAKE_MS - 50);
    expect(ms).toBeLessThan(HANDSHAKE_MS + SLACK_MS);
  });

  it('closes a TLS connection that handshakes and then stays silent, at the idle timeout', async () => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    socket.on('error', () => {});
    socket.resume();
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    const ms = await msUntilClosed(socket, IDLE_MS + SLACK_MS);
    expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 100);
    expect(ms).toBeLessThan(IDLE_MS + SLACK_MS);
  });

  it('closes an HTTP/2 connection that sent its preface and nothing else, at the idle timeout', async () => {
    const session = http2.connect(`https://${limited.agentApiAddress}`, { rejectUnauthorized: false });
    session.on('error', () => {});
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    const ms = await msUntilClosed(session, IDLE_MS + SLACK_MS);
    expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 100);
    expect(ms).toBeLessThan(IDLE_MS + SLACK_MS);
  });

  it('ends a call whose request message never comes, at the request timeout', async () => {
    const session = http2.connect(`https://${limited.agentApiAddress}`, { rejectUnauthorized: false });
    session.on('error', () => {});
    const start = performance.now();
    const stream = session.request({
      ':method': 'POST',
      ':path': '/sigil.agent.v1.AgentApi/MintJwtSvid',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve) => {
      stream.on('response', (headers) => {
        if (headers['grpc-status'] !== undefined) resolve(headers);
      });
      stream.on('trailers', resolve);
    });
    session.close();
    expect(trailers['grpc-status']).toBe(String(status.DEADLINE_EXCEEDED));
    expect(decodeURIComponent(String(trailers['grpc-message']))).toContain('agent_api.request_timeout');
    expect(performance.now() - start).toBeLessThan(REQUEST_MS + SLACK_MS);
  });

  it("keeps an agent's sync stream open past the idle timeout, and bounds its signing", async () => {
    const limitedBundle = await bundlePemOf(limited);
    const agent = await attestWithToken(limited, limitedBundle, await generateToken(limited));
    const agentId = agent.state.spiffeId;
    const updates: Array<{ upserted?: Array<{ id: string }> }> = [];
    const stream = agent.connection.syncEntries({ sinceRevision: 0 });
    let streamError: ServiceError | undefined;
    stream.on('data', (message) => updates.push(message));
    stream.on('error', (err: ServiceError) => {
      streamError = err;
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS * 2 + 500));
      const entryId = (
        await cliJson<{ entry: { id: string } }>(
          limited,
          'entry',
          'create',
          '--spiffe-id',
          `${TD}/flood`,
          '--parent-id',
          agentId,
          '--selector',
          'unix:uid:1',
        )
      ).entry.id;
      const delivered = () => updates.some((u) => u.upserted?.some((e) => e.id === entryId));
      await waitFor(
        () => delivered() || streamError !== undefined,
        10_000,
        () => `entry ${entryId} never reached the sync stream`,
      );
      expect(streamError).toBeUndefined();
      expect(delivered()).toBe(true);

      // Bad requests are refused by what they carry, before any signing.
      const tooMany = Array.from({ length: 1001 }, () => ({ entryId, csr: Buffer.from('x') }));
      expect((await rejectionOf(agent.connection.signX509Svids(tooMany))).details).toBe(
        'requests: at most 1000 CSRs per SignX509Svids call (got 1001)',
      );
      const huge = await rejectionOf(agent.connection.mintJwtSvid(entryId, ['a'.repeat(2_000)]));
      expect([huge.code, huge.details]).toEqual([
        status.INVALID_ARGUMENT,
        expect.stringContaining('at most 1024 bytes'),
      ]);
      const many = await rejectionOf(
        agent.connection.mintJwtSvid(
          entryId,
          Array.from({ length: 17 }, (_, i) => `a${i}`),
        ),
      );
      expect(many.details).toContain('at most 16 audience values');

      // A flood: the burst of five goes through, plus what the rate refills meanwhile; the rest is
      // told to slow down, with one log line for the episode rather than one per refused call.
      const floodStart = performance.now();
      const outcomes = await Promise.allSettled(
        Array.from({ length: 20 }, () => agent.connection.mintJwtSvid(entryId, ['aud'])),
      );
      const refilled = Math.floor(((performance.now() - floodStart) / 1000) * 5);
      const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(outcomes.length - refused.length).toBeGreaterThanOrEqual(5);
      expect(outcomes.length - refused.length).toBeLessThanOrEqual(5 + refilled + 1);
      expect(refused[0]!.reason.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(refused[0]!.reason.details).toMatch(
        /is signing too fast: at most 5 SVIDs per second \(burst 5\); retry in/,
      );
      const limitedLogs = () => serverLog(limited, 'Agent signing rate limited');
      await waitFor(
        () => limitedLogs().length > 0,
        10_000,
        () => 'no rate-limit log line',
      );
      expect(limitedLogs().length).toBeLessThan(refused.length);
    } finally {
      stream.cancel();
      agent.connection.close();
    }
  });
});

describe('agent API connection caps', () => {
  let capped: ServerProcess;
  beforeAll(async () => {
    capped = await startLimitedServer({
      agent_api: { handshake_timeout: '30s', max_connections: 6, max_connections_per_ip: 4 },
    });
  });
  afterAll(async () => {
    await capped?.stop();
  });

  it('refuses the connection past the per-IP cap, then past the total cap, at once', async () => {
    const { host, port } = capped.agentApi;
    const open = (localAddress: string) => {
      const socket = net.connect({ host, port, localAddress });
      socket.on('error', () => {});
      socket.resume();
      return new Promise<net.Socket>((resolve) => socket.once('connect', () => resolve(socket)));
    };
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 4; i++) held.push(await open('127.0.0.1'));
      const overIp = await open('127.0.0.1');
      expect(await msUntilClosed(overIp, 2_000)).toBeLessThan(2_000);
      for (let i = 0; i < 2; i++) held.push(await open('127.0.0.2'));
      const overTotal = await open('127.0.0.3');
      expect(await msUntilClosed(overTotal, 2_000)).toBeLessThan(2_000);
      // The ones within the caps are still there.
      expect(held.every((s) => !s.destroyed && s.readyState === 'open')).toBe(true);
      // Logged once each (the server's stdout reaches us a little later than the close).
      const reasons = () => serverLog(capped, 'Agent API connections refused').map((r) => r.reason);
      await waitFor(
        () => reasons().length >= 2,
        10_000,
        () => `refusals logged: ${reasons()}`,
      );
      expect(reasons().sort()).toEqual(['connection-cap', 'ip-cap']);
    } finally {
      for (const socket of held) socket.destroy();
    }
  });
});
