// Attacks on the admin REST listeners with real sockets against a real sigil-server: on the mTLS
// listener (admin_bind) a TCP client that never handshakes, a TLS client that handshakes and then
// says nothing, a slowloris head, a trickled body, an idle keep-alive connection and one connection
// more than the cap; on the owner-only Unix socket the same slow clients. Every phase has a deadline
// (admin_api) and each refusal is answered where HTTP still can be, and logged.
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverLog } from '../support/agent-api-client.js';
import { waitFor } from '../support/agent-harness.js';
import type { ServerProcess } from '../support/harness.js';
import { msUntilClosed, startLimitedServer } from '../support/limited-server.js';

const HANDSHAKE_MS = 1_000;
const HEADER_MS = 1_000;
const REQUEST_MS = 2_000;
const IDLE_MS = 2_000;
/** Slack for a loaded 2-core machine: timers fire late, never early. */
const SLACK_MS = 3_000;
/** node:http sweeps for late heads and bodies every header_timeout / 2, so they are cut by 1.5x. */
const SWEEP_MS = HEADER_MS / 2;

type Stream = net.Socket | tls.TLSSocket;
/** The head's end for a request announcing a body it then sends one byte at a time. */
const BODY_HEAD = 'content-type: application/json\r\ncontent-length: 1000\r\n\r\n';

/** Collects what the server sends back on `socket`, and keeps it flowing so its close is seen. */
function received(socket: Stream): () => string {
  let text = '';
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  socket.on('error', () => {});
  return () => text;
}

/** Writes `parts` one after another, `everyMs` apart, until the socket closes; returns a stop function. */
function trickle(socket: Stream, parts: () => string, everyMs: number): () => void {
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(parts());
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
  return () => clearInterval(timer);
}

describe('admin API listener deadlines', () => {
  let server: ServerProcess;
  let port: number;

  const tlsConnect = async (): Promise<tls.TLSSocket> => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    return socket;
  };

  beforeAll(async () => {
    server = await startLimitedServer(
      {
        admin_api: {
          handshake_timeout: `${HANDSHAKE_MS}ms`,
          header_timeout: `${HEADER_MS}ms`,
          request_timeout: `${REQUEST_MS}ms`,
          idle_timeout: `${IDLE_MS}ms`,
        },
      },
      { adminBind: true },
    );
    port = server.adminAddress!.port;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('closes a TCP connection that never starts its TLS handshake, at the handshake timeout', async () => {
    const socket = net.connect(port, '127.0.0.1');
    received(socket);
    const ms = await msUntilClosed(socket, HANDSHAKE_MS + SLACK_MS);
    expect(ms).toBeGreaterThanOrEqual(HANDSHAKE_MS - 50);
    expect(ms).toBeLessThan(HANDSHAKE_MS + SLACK_MS);
  });

  it('closes a TLS connection that handshakes and sends nothing, at the header timeout', async () => {
    const socket = await tlsConnect();
    received(socket);
    const ms = await msUntilClosed(socket, HEADER_MS + SWEEP_MS + SLACK_MS);
    expect(ms).toBeGreaterThanOrEqual(HEADER_MS - 100);
    expect(ms).toBeLessThan(HEADER_MS + SWEEP_MS + SLACK_MS);
  });

  it('answers a slowloris head with 408 naming the limit, and closes it', async () => {
    const socket = await tlsConnect();
    const answer = received(socket);
    socket.write('GET /healthz HTTP/1.1\r\nHost: sigil\r\n');
    let n = 0;
    trickle(socket, () => `X-Slow-${n++}: a\r\n`, 200);
    const ms = await msUntilClosed(socket, HEADER_MS + SWEEP_MS + SLACK_MS);
    expect(ms).toBeLessThan(HEADER_MS + SWEEP_MS + SLACK_MS);
    expect(answer()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(answer()).toContain('request head not received within 1s (admin_api.header_timeout)');
  });

  it('answers a refused caller and closes its connection, not waiting for the rest of its body', async () => {
    const socket = await tlsConnect();
    const answer = received(socket);
    socket.write(`POST /v1/entries HTTP/1.1\r\nHost: sigil\r\n${BODY_HEAD}{`);
    trickle(socket, () => ' ', 200);
    const ms = await msUntilClosed(socket, REQUEST_MS + SWEEP_MS + SLACK_MS);
    expect(ms).toBeLessThan(REQUEST_MS + SWEEP_MS + SLACK_MS);
    expect(answer()).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    expect(answer()).toMatch(/\r\nconnection: close\r\n/i);
    // Closed after the answer, not by the request timeout, which would have answered 408 too.
    expect(answer()).not.toContain('408');
  });

  it('closes a keep-alive connection left idle after its answer, at the idle timeout', async () => {
    const socket = await tlsConnect();
    const answer = received(socket);
    socket.write('GET /healthz HTTP/1.1\r\nHost: sigil\r\n\r\n');
    await waitFor(
      () => answer().includes('\r\n\r\n'),
      10_000,
      () => `no answer: ${answer()}`,
    );
    expect(answer()).toMatch(/^HTTP\/1\.1 200 /);
    // node:http gives keep-alive one second over the timeout, against races with clients.
    const ms = await msUntilClosed(socket, IDLE_MS + 1_000 + SLACK_MS);
    expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 100);
    expect(ms).toBeLessThan(IDLE_MS + 1_000 + SLACK_MS);
  });

  it('holds the owner-only Unix socket to the same header and request deadlines', async () => {
    const silent = net.connect(server.adminSocket);
    received(silent);
    const slowHead = net.connect(server.adminSocket);
    const headAnswer = received(slowHead);
    slowHead.write('GET /healthz HTTP/1.1\r\nHost: sigil\r\n');
    let n = 0;
    trickle(slowHead, () => `X-Slow-${n++}: a\r\n`, 200);
    const slowBody = net.connect(server.adminSocket);
    const bodyAnswer = received(slowBody);
    slowBody.write(`POST /v1/entries HTTP/1.1\r\nHost: sigil\r\n${BODY_HEAD}{`);
    trickle(slowBody, () => ' ', 200);
    const [silentMs, headMs, bodyMs] = await Promise.all([
      msUntilClosed(silent, HEADER_MS + SWEEP_MS + SLACK_MS),
      msUntilClosed(slowHead, HEADER_MS + SWEEP_MS + SLACK_MS),
      msUntilClosed(slowBody, REQUEST_MS + SWEEP_MS + SLACK_MS),
    ]);
    expect(silentMs).toBeGreaterThanOrEqual(HEADER_MS - 100);
    expect(silentMs).toBeLessThan(HEADER_MS + SWEEP_MS + SLACK_MS);
    expect(headMs).toBeLessThan(HEADER_MS + SWEEP_MS + SLACK_MS);
    expect(headAnswer()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(headAnswer()).toContain('request head not received within 1s (admin_api.header_timeout)');
    expect(bodyMs).toBeGreaterThanOrEqual(REQUEST_MS - 100);
    expect(bodyMs).toBeLessThan(REQUEST_MS + SWEEP_MS + SLACK_MS);
    expect(bodyAnswer()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(bodyAnswer()).toContain('request not received within 2s (admin_api.request_timeout)');
  });

  it('logs each kind of refusal, with no request content', async () => {
    const reasons = () => serverLog(server, 'Admin API connections refused').map((r) => r.reason);
    await waitFor(
      () => ['handshake', 'header-timeout', 'request-timeout'].every((r) => reasons().includes(r)),
      10_000,
      () => `refusals logged: ${reasons()}`,
    );
    expect(server.logs()).not.toContain('X-Slow-');
  });
});

describe('admin API connection cap', () => {
  const MAX = 3;
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startLimitedServer(
      { admin_api: { handshake_timeout: '30s', max_connections: MAX } },
      { adminBind: true },
    );
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('closes the connection past the cap at once, and the Unix socket still serves the operator', async () => {
    const open = () => {
      const socket = net.connect(server.adminAddress!.port, '127.0.0.1');
      received(socket);
      return new Promise<net.Socket>((resolve) => socket.once('connect', () => resolve(socket)));
    };
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < MAX; i++) held.push(await open());
      const over = await open();
      expect(await msUntilClosed(over, 2_000)).toBeLessThan(2_000);
      expect(held.every((s) => !s.destroyed && s.readyState === 'open')).toBe(true);
      const listed = await server.cli('entry', 'show');
      expect(listed.code, listed.stderr).toBe(0);
      await waitFor(
        () => serverLog(server, 'Admin API connections refused').some((r) => r.reason === 'connection-cap'),
        10_000,
        () => 'no connection-cap refusal logged',
      );
    } finally {
      for (const socket of held) socket.destroy();
    }
  });
});
