// Attacks on the agent API with a real sigil-server: more streams on one connection than its
// SETTINGS allow, from a bare HTTP/2 client that does not queue them as nghttp2 would, and an
// attestation flood from one source address. A legitimate agent's calls beyond the stream cap are
// queued by its own client, not refused; a refused attestation costs nothing and logs no evidence.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attestRaw,
  attestWithToken,
  bundlePemOf,
  generateToken,
  newConnection,
  serverLog,
} from '../support/agent-api-client.js';
import { waitFor } from '../support/agent-harness.js';
import type { ServerProcess } from '../support/harness.js';
import { startLimitedServer } from '../support/limited-server.js';
import { RawH2Connection, REFUSED_STREAM } from '../support/raw-h2.js';

const TD = 'spiffe://example.org';
const MAX_STREAMS = 4;
/** The open calls' requests never come: the request timeout ends them, after the cap was tested. */
const REQUEST_TIMEOUT_S = 5;
const FETCH_BUNDLES = '/sigil.agent.v1.AgentApi/FetchBundles';

let server: ServerProcess;
let bundlePem: string;

beforeAll(async () => {
  server = await startLimitedServer({
    agent_api: {
      max_concurrent_streams: MAX_STREAMS,
      request_timeout: `${REQUEST_TIMEOUT_S}s`,
      attest_rate: 1,
      attest_burst: 1,
    },
  });
  bundlePem = await bundlePemOf(server);
});
afterAll(async () => {
  await server?.stop();
});

describe('agent API streams per connection', () => {
  // Streams opened before the client acknowledged the server's SETTINGS are refused one by one.
  it(`refuses streams beyond ${MAX_STREAMS} opened at once with REFUSED_STREAM, serving the rest`, async () => {
    const { host, port } = server.agentApi;
    const conn = await RawH2Connection.openTls(host, port);
    try {
      const ids = Array.from({ length: MAX_STREAMS + 3 }, (_, i) => 2 * i + 1);
      // Calls whose request never comes: each holds its stream until the request timeout.
      for (const id of ids) conn.openCall(id, FETCH_BUNDLES, { ':scheme': 'https' });
      const refused = () => ids.filter((id) => conn.streams.get(id)!.rstCode === REFUSED_STREAM);
      await waitFor(
        () => refused().length === 3,
        10_000,
        () => `streams: ${JSON.stringify([...conn.streams])}`,
      );
      expect(conn.maxConcurrentStreams).toBe(MAX_STREAMS);
      expect(refused()).toEqual(ids.slice(MAX_STREAMS));
      // The ones within the cap are answered (DEADLINE_EXCEEDED) once the request timeout passes.
      const answered = () => ids.slice(0, MAX_STREAMS).every((id) => conn.streams.get(id)!.headers > 0);
      await waitFor(
        answered,
        (REQUEST_TIMEOUT_S + 10) * 1000,
        () => `streams: ${JSON.stringify([...conn.streams])}`,
      );
      expect(conn.closed).toBe(false);
    } finally {
      conn.close();
    }
  });

  // Once the limit is acknowledged, exceeding it is a protocol error: the connection is closed.
  it(`closes a connection that opens more than ${MAX_STREAMS} streams after acknowledging the limit`, async () => {
    const { host, port } = server.agentApi;
    const conn = await RawH2Connection.openTls(host, port);
    try {
      await waitFor(
        () => conn.maxConcurrentStreams !== undefined,
        10_000,
        () => 'no SETTINGS from the server',
      );
      expect(conn.maxConcurrentStreams).toBe(MAX_STREAMS);
      for (let i = 0; i <= MAX_STREAMS; i++) conn.openCall(2 * i + 1, FETCH_BUNDLES, { ':scheme': 'https' });
      await waitFor(
        () => conn.closed,
        10_000,
        () => `still open; streams: ${JSON.stringify([...conn.streams])}`,
      );
    } finally {
      conn.close();
    }
  });

  it("queues a legitimate agent's calls beyond the cap in its own client, refusing none", async () => {
    const agent = await attestWithToken(server, bundlePem, await generateToken(server));
    try {
      const results = await Promise.all(
        Array.from({ length: MAX_STREAMS * 5 }, () => agent.connection.fetchBundles()),
      );
      expect(results.every((r) => r.bundle.length > 0)).toBe(true);
    } finally {
      agent.connection.close();
    }
  });
});

describe('attestation rate per source address', () => {
  it('refuses attestations past the rate before reading them: the token stays unspent and unlogged', async () => {
    const connection = newConnection(server.agentApiAddress, bundlePem);
    try {
      // A refusal of the valid token is what this test needs; the bucket (one token, one a second)
      // is drained by a bogus attempt first, and should the machine be so slow that it refilled in
      // between, the valid attempt went through and a new token is tried.
      let token = '';
      let refused: Awaited<ReturnType<typeof attestRaw>> | undefined;
      for (let attempt = 0; attempt < 5 && refused === undefined; attempt++) {
        token = await generateToken(server, '--spiffe-id', `${TD}/rate/${attempt}`);
        await attestRaw(connection, {
          attestor: 'join_token',
          payload: Buffer.from('bogus'),
          csr: Buffer.alloc(0),
        });
        const outcome = await attestRaw(connection, {
          attestor: 'join_token',
          payload: Buffer.from(token),
          csr: Buffer.from('not a csr either: never read'),
        });
        if (outcome.error?.code === status.RESOURCE_EXHAUSTED) refused = outcome;
      }
      expect(refused?.error?.details).toMatch(
        /^too many attestations from 127\.0\.0\.1: at most 1 per second \(burst 1, agent_api\.attest_rate\); retry in [\d.]+s$/,
      );
      await waitFor(
        () => serverLog(server, 'Agent attestation rate limited').length > 0,
        10_000,
        () => 'no rate-limit log line',
      );
      expect(serverLog(server, 'Agent attestation rate limited')[0]).toMatchObject({
        sourceIp: '127.0.0.1',
        retryAfterS: expect.any(Number),
      });
      // Nothing of the refused request reached the log: the token is in no line.
      expect(server.logs()).not.toContain(token);

      // Once the bucket refills, the same token attests: the refusal did not spend it.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const agent = await attestWithToken(server, bundlePem, token);
      agent.connection.close();
      expect(agent.state.spiffeId).toBe(`${TD}/sigil/agent/join_token/${token}`);
    } finally {
      connection.close();
    }
  });
});
