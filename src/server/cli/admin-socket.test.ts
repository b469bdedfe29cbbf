// The CLI checks the admin socket before sending a byte: one another user could have planted (or
// swapped, through a directory they may write) is refused with exit 5 and never spoken to.
import { chmodSync, chownSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type StubAdminServer, startStubAdminServer } from './stub-admin-server.test-support.js';

const NOBODY = 65534;
const HEALTHY = { json: { status: 'ok' } };

let stub: StubAdminServer;
beforeEach(async () => {
  stub = await startStubAdminServer({ 'GET /healthz': HEALTHY, 'GET /readyz': HEALTHY });
});
afterEach(async () => {
  await stub.close();
});

describe('the admin socket is vetted before the CLI connects', () => {
  it('talks to a socket of our own in a directory of our own', async () => {
    expect((await stub.cli(['healthcheck'])).code).toBe(0);
    expect(stub.requests.length).toBeGreaterThan(0);
  });

  it('refuses a socket another user owns (exit 5), sending nothing', async () => {
    chownSync(stub.socketPath, NOBODY, NOBODY);
    const run = await stub.cli(['healthcheck']);
    expect(run.code).toBe(5);
    expect(run.stderr).toContain(
      `sigil-server healthcheck: --admin-socket: socket "${stub.socketPath}" belongs to someone else (owner uid 65534`,
    );
    expect(run.stderr).not.toContain('--help');
    expect(stub.requests).toEqual([]);
  });

  it('refuses a socket in a directory others may write, and says so in JSON too', async () => {
    chmodSync(stub.dir, 0o777);
    const run = await stub.cli(['entry', 'show', '--output', 'json']);
    expect(run.code).toBe(5);
    expect(JSON.parse(run.stdout)).toMatchObject({
      error: { code: 'ERR_SOCKET_UNSAFE', field: 'admin-socket' },
    });
    expect(JSON.parse(run.stdout).error.message).toContain(`"${stub.dir}" is writable by every user`);
    expect(stub.requests).toEqual([]);
  });
});
