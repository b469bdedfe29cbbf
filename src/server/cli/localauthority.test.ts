// `localauthority`: --force reaches the admin API as ?force=true (and only when given), and `show`
// prints when a prepared authority is safe to activate and what still chains to an old one.
import { afterEach, describe, expect, it } from 'vitest';
import {
  type StubAdminServer,
  type StubRoute,
  startStubAdminServer,
} from './stub-admin-server.test-support.js';

let stub: StubAdminServer | undefined;
afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

async function serve(routes: Record<string, StubRoute>): Promise<StubAdminServer> {
  stub = await startStubAdminServer(routes);
  return stub;
}

const base = {
  tainted: false,
  not_after: 1_900_000_000,
  created_at: 1_800_000_000,
  published_at: 1_800_000_000,
  activated_at: null,
  next_event: null,
  next_event_at: null,
  safe_to_activate_at: null,
  dependents: null,
};

describe('localauthority', () => {
  it('sends --force as ?force=true on activate and revoke, and nothing without it', async () => {
    const authority = { ...base, id: 'ab', state: 'active' };
    const s = await serve({
      'POST /v1/authorities/x509/activate': { json: { authority } },
      'POST /v1/authorities/x509/ab/revoke': { json: { authority: { ...authority, state: 'old' } } },
    });
    expect((await s.cli(['localauthority', 'activate', '--kind', 'x509'])).code).toBe(0);
    expect((await s.cli(['localauthority', 'activate', '--kind', 'x509', '--force'])).code).toBe(0);
    expect((await s.cli(['localauthority', 'revoke', '--kind', 'x509', '--id', 'ab', '--force'])).code).toBe(
      0,
    );
    expect(s.requests.map((r) => r.query)).toEqual([{}, { force: ['true'] }, { force: ['true'] }]);
    expect((await s.cli(['localauthority', 'taint', '--kind', 'x509', '--id', 'ab', '--force'])).code).toBe(
      2,
    );
  });

  it('shows when a prepared authority is safe to activate and what chains to an old one', async () => {
    const s = await serve({
      'GET /v1/authorities': {
        json: {
          x509: [
            {
              ...base,
              id: 'old1',
              state: 'old',
              tainted: true,
              dependents: { agents: 2, unknown_agents: 0, server_svid: true },
            },
            {
              ...base,
              id: 'old2',
              state: 'old',
              dependents: { agents: 0, unknown_agents: 0, server_svid: false },
            },
            { ...base, id: 'act', state: 'active' },
            { ...base, id: 'prep', state: 'prepared', safe_to_activate_at: 1_900_000_000 },
          ],
          jwt: [],
        },
      },
    });
    const run = await s.cli(['localauthority', 'show']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/old1 +old \(tainted\).*chained: 2 agents, the server SVID/);
    expect(run.stdout).toMatch(/old2 +old .*nothing chains to it/);
    expect(run.stdout).toMatch(/prep +prepared .*safe to activate from 2030-03-17T17:46:40Z/);
  });
  it('--wait shows what it waits for, then acts once the authority is safe', async () => {
    let polls = 0;
    const chained = { agents: 1, unknown_agents: 0, server_svid: false };
    const none = { agents: 0, unknown_agents: 0, server_svid: false };
    const s = await serve({
      // Two answers still chained, then nothing: the revoke must come after the third poll.
      'GET /v1/authorities': () => {
        polls++;
        const dependents = polls < 3 ? chained : none;
        return { json: { x509: [{ ...base, id: 'ab', state: 'old', tainted: true, dependents }], jwt: [] } };
      },
      'POST /v1/authorities/x509/ab/revoke': { json: { authority: { ...base, id: 'ab', state: 'old' } } },
    });
    const run = await s.cli(['localauthority', 'revoke', '--kind', 'x509', '--id', 'ab', '--wait', '1m']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('waiting: 1 live agent SVID(s) still chain to ab');
    expect(polls).toBe(3);
    expect(s.requests.map((r) => `${r.method} ${r.path}`).at(-1)).toBe('POST /v1/authorities/x509/ab/revoke');
  });

  it('--wait gives up with what still blocks, without acting, and refuses a bad duration', async () => {
    const future = Math.ceil(Date.now() / 1000) + 3600;
    const s = await serve({
      'GET /v1/authorities': {
        json: { x509: [{ ...base, id: 'p', state: 'prepared', safe_to_activate_at: future }], jwt: [] },
      },
    });
    const run = await s.cli(['localauthority', 'activate', '--kind', 'x509', '--wait', '1s']);
    expect(run.code).toBe(1);
    expect(run.stderr).not.toContain('for usage');
    expect(run.stderr).toMatch(/gave up waiting: the prepared authority p is published to agents until/);
    expect(s.requests.every((r) => r.method === 'GET')).toBe(true);
    const typo = await s.cli(['localauthority', 'activate', '--kind', 'x509', '--wait', 'soon']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('--wait');
  });
});
