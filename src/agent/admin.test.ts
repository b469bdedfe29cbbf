// The agent admin socket's start: a stale socket is replaced, anything else at the path is refused.
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SigilError } from '../spiffe/errors.js';
import { type AgentAdminOptions, startAgentAdmin } from './admin.js';
import type { AgentHealth } from './identity/index.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function socketIn(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sigil-agent-admin-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'admin.sock');
}

function options(socketPath: string): AgentAdminOptions {
  return {
    socketPath,
    manager: {
      matching: () => [],
      nearMatches: () => [],
      svidStatus: () => ({ minted: false }),
      entries: () => [],
    },
    attestor: { attest: async () => [] },
    status: () => ({
      agentId: 'spiffe://example.org/agent',
      svidExpiresAtMs: 0,
      serverConnected: true,
      revision: 1,
      entries: 0,
      svids: 0,
      health: { status: 'ok', reasons: [], warnings: [] },
    }),
    logger: pino({ level: 'silent' }),
  };
}

function healthz(socketPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path: '/healthz' }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

function get(socketPath: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path: urlPath }, (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('startAgentAdmin', () => {
  it('replaces a socket left by a crashed agent', async () => {
    const socketPath = socketIn();
    const crashed = createServer();
    await new Promise<void>((resolve) => crashed.listen(`${socketPath}.old`, resolve));
    renameSync(`${socketPath}.old`, socketPath);
    await new Promise<void>((resolve) => crashed.close(() => resolve()));

    const admin = await startAgentAdmin(options(socketPath));
    cleanups.push(() => admin.close());
    expect(await healthz(socketPath)).toBe(200);
  });

  it('answers 503 with the reasons when the agent is unhealthy, 200 when only degraded', async () => {
    const socketPath = socketIn();
    let health: AgentHealth = {
      status: 'unhealthy',
      reasons: ['the server refuses this agent (banned)'],
      warnings: [],
    };
    const base = options(socketPath);
    const admin = await startAgentAdmin({ ...base, status: () => ({ ...base.status(), health }) });
    cleanups.push(() => admin.close());
    expect(await healthz(socketPath)).toBe(503);
    health = { status: 'degraded', reasons: [], warnings: ['server unreachable'] };
    expect(await healthz(socketPath)).toBe(200);
  });

  it('refuses a file that is not a socket instead of deleting it', async () => {
    const socketPath = socketIn();
    writeFileSync(socketPath, 'an operator typo pointed admin_socket here\n');
    await expect(startAgentAdmin(options(socketPath))).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      field: 'admin_socket',
      message: expect.stringContaining('exists and is not a socket; refusing to replace it'),
    });
    expect(existsSync(socketPath)).toBe(true);
    expect(readFileSync(socketPath, 'utf8')).toBe('an operator typo pointed admin_socket here\n');
  });
  it('answers bad input 400 and its own failures 500, logging the failure whole', async () => {
    const socketPath = socketIn();
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    // A code of our own environment (not the caller's input): once answered as the caller's fault.
    const failure = new SigilError('ERR_CONFIG_INVALID', 'attestor exploded', {
      cause: new Error('/proc went away'),
    });
    const admin = await startAgentAdmin({
      ...options(socketPath),
      attestor: {
        attest: async () => {
          throw failure;
        },
      },
      logger,
    });
    cleanups.push(() => admin.close());
    const bad = await get(socketPath, '/debug/explain?pid=zero');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toMatchObject({ code: 'ERR_INPUT_INVALID' });
    const internal = await get(socketPath, `/debug/explain?pid=${process.pid}`);
    expect(internal.status).toBe(500);
    expect(internal.body).not.toContain('exploded');
    expect(JSON.parse(internal.body).error).toEqual({
      code: 'ERR_CONFIG_INVALID',
      message: 'internal error; see the agent log',
    });
    const logged = lines.join('');
    expect(logged).toContain('attestor exploded');
    expect(logged).toContain('/proc went away');
  });
});
