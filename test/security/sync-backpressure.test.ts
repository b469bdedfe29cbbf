// An attested agent that stops reading its SyncEntries stream (a raw HTTP/2 client announcing a zero
// window and never granting more) while its entries keep changing: the server holds a bounded number
// of updates for it, trades them for one snapshot, then closes the stream once it stayed unread for
// agent_api.sync_drain_timeout. Another agent, reading normally, gets every update all along.
import http from 'node:http';
import type { ClientReadableStream } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentApiService, type SyncEntriesResponse } from '../../proto/agent-api.js';
import { encodePem } from '../../src/spiffe/pem.js';
import {
  type Attested,
  attestWithToken,
  bundlePemOf,
  generateToken,
  serverLog,
} from '../support/agent-api-client.js';
import type { ServerProcess } from '../support/harness.js';
import { startLimitedServer } from '../support/limited-server.js';
import { RawH2Connection } from '../support/raw-h2.js';

const TD = 'spiffe://example.org';
const DRAIN_TIMEOUT_S = 3;
/** Far more updates than the server holds for one stream (64), on top of grpc-js's buffer (16). */
const CHANGES = 150;
const NGHTTP2_CANCEL = 0x8;

let server: ServerProcess;
let bundlePem: string;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  server = await startLimitedServer({ agent_api: { sync_drain_timeout: `${DRAIN_TIMEOUT_S}s` } });
  bundlePem = await bundlePemOf(server);
});
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await server.stop();
});

function admin(method: string, url: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: server.adminSocket, method, path: url, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function metric(name: string): Promise<number> {
  const { text } = await admin('GET', '/metrics');
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

async function agent(): Promise<{ attested: Attested; id: string }> {
  const attested = await attestWithToken(server, bundlePem, await generateToken(server));
  cleanups.push(() => attested.connection.close());
  return { attested, id: attested.state.spiffeId };
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('SyncEntries with an agent that stops reading', () => {
  it('holds a bounded backlog, sends a snapshot instead, closes the stream, and leaves other agents be', async () => {
    const slow = await agent();
    const steady = await agent();

    // The steady agent reads its stream as the real agent does.
    const seen = new Set<string>();
    const steadyStream: ClientReadableStream<SyncEntriesResponse> = steady.attested.connection.syncEntries({
      sinceRevision: 0,
    });
    let steadyError: unknown;
    steadyStream.on('data', (message: SyncEntriesResponse) => {
      for (const entry of message.upserted) seen.add(entry.spiffeId);
    });
    steadyStream.on('error', (err) => {
      steadyError = err;
    });
    cleanups.push(() => steadyStream.cancel());

    // The slow one opens its stream with a zero window: the server can send it headers, no data.
    const raw = await RawH2Connection.openTls(server.agentApi.host, server.agentApi.port, {
      cert: slow.attested.state.chain.map((c) => encodePem('CERTIFICATE', c)).join(''),
      key: slow.attested.state.key.export({ format: 'pem', type: 'pkcs8' }) as string,
      initialWindowSize: 0,
    });
    cleanups.push(() => raw.close());
    raw.call(
      1,
      '/sigil.agent.v1.AgentApi/SyncEntries',
      agentApiService.SyncEntries.requestSerialize({ sinceRevision: 0 }),
    );
    await until(() => serverLog(server, 'Agent synced from a snapshot').length === 2, 5_000, 'both syncs');
    const logFrom = server.logs().length;

    for (let i = 0; i < CHANGES; i++) {
      for (const parent of [slow.id, steady.id]) {
        const created = await admin('POST', '/v1/entries', {
          spiffe_id: `${TD}/churn/${parent === slow.id ? 'slow' : 'steady'}/${i}`,
          parent_id: parent,
          selectors: [{ type: 'unix', value: `uid:${1000 + i}` }],
        });
        expect(created.status, created.text).toBe(201);
      }
    }

    // Bounded: the slow stream's backlog was traded for one snapshot, not queued without end.
    expect(await metric('sigil_server_agent_sync_pending_messages')).toBeLessThanOrEqual(64);
    expect(await metric('sigil_server_agent_sync_behind_total{outcome="snapshot"}')).toBe(1);
    expect(
      serverLog(
        server,
        'Agent sync stream fell behind; its queued updates are replaced by a snapshot',
        logFrom,
      ),
    ).toEqual([expect.objectContaining({ agentId: slow.id })]);
    // The steady agent got every one of its updates, while the slow one was stuck.
    await until(() => seen.size >= CHANGES, 5_000, 'the steady agent to see every entry');
    expect([...seen].filter((id) => id.includes('/churn/slow/'))).toEqual([]);

    // Unread for the drain timeout: closed, its held updates dropped.
    await until(() => raw.streams.get(1)?.rstCode !== undefined, (DRAIN_TIMEOUT_S + 3) * 1000, 'the reset');
    expect(raw.streams.get(1)?.rstCode).toBe(NGHTTP2_CANCEL);
    expect(raw.streams.get(1)?.dataBytes).toBe(0);
    expect(
      serverLog(server, 'Agent sync stream closed: the agent read nothing while updates waited', logFrom),
    ).toEqual([expect.objectContaining({ agentId: slow.id, drainTimeoutMs: DRAIN_TIMEOUT_S * 1000 })]);
    expect(await metric('sigil_server_agent_sync_behind_total{outcome="closed"}')).toBe(1);
    expect(await metric('sigil_server_agent_sync_pending_messages')).toBe(0);

    // The steady agent's stream is untouched and still live.
    const more = await admin('POST', '/v1/entries', {
      spiffe_id: `${TD}/churn/steady/after`,
      parent_id: steady.id,
      selectors: [{ type: 'unix', value: 'uid:7' }],
    });
    expect(more.status).toBe(201);
    await until(() => seen.has(`${TD}/churn/steady/after`), 5_000, 'the update after the close');
    expect(steadyError).toBeUndefined();
  });
});
