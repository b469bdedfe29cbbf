// The CLI refuses Sigil's reserved IDs wherever an operator chooses an ID, before any request.
import { afterEach, describe, expect, it } from 'vitest';
import { type StubAdminServer, startStubAdminServer } from './stub-admin-server.test-support.js';

const SERVER = 'spiffe://example.org/sigil/server';
const AGENT = 'spiffe://example.org/sigil/agent/join_token/abc';

let stub: StubAdminServer | undefined;
afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

describe('reserved IDs in the CLI', () => {
  it.each([
    [
      'entry create',
      ['entry', 'create', '--spiffe-id', SERVER, '--parent-id', AGENT, '--selector', 'unix:uid:0'],
    ],
    [
      'entry create (node)',
      ['entry', 'create', '--spiffe-id', AGENT, '--node', '--selector', 'k8s_sat:cluster:c'],
    ],
    [
      'entry update',
      ['entry', 'update', '--id', '6f1c2a9e-3b4d-4c5e-8f70-112233445566', '--spiffe-id', SERVER],
    ],
    ['token generate', ['token', 'generate', '--spiffe-id', SERVER]],
    ['x509 mint', ['x509', 'mint', '--spiffe-id', SERVER]],
    ['jwt mint', ['jwt', 'mint', '--spiffe-id', 'spiffe://example.org/sigil', '--audience', 'a']],
  ])('%s is refused without a request', async (_, argv) => {
    stub = await startStubAdminServer({});
    const run = await stub.cli(argv);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(
      /--spiffe-id: SPIFFE ID "spiffe:\/\/example\.org\/sigil[^"]*" is reserved for Sigil's server and agents/,
    );
    expect(stub.requests).toEqual([]);
  });

  it('still accepts an agent or the server as --parent-id', async () => {
    stub = await startStubAdminServer({ 'POST /v1/entries': { status: 201, json: { entry: {} } } });
    await stub.cli([
      'entry',
      'create',
      '--spiffe-id',
      'spiffe://example.org/web',
      '--parent-id',
      AGENT,
      '--selector',
      'unix:uid:0',
    ]);
    expect(stub.requests.map((r) => (r.body as { parent_id: string }).parent_id)).toEqual([AGENT]);
  });
});
