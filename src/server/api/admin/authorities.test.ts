// /v1/authorities: activate and revoke refuse (409 ERR_AUTHORITY_STATE) what would lock agents
// out, and take `?force=true` or `{"force": true}` to do it anyway; show carries when a prepared
// authority is safe to activate and what still chains to an old one.
import { afterEach, describe, expect, it } from 'vitest';
import { type AdminFixture, startAdminFixture } from '../../../../test/support/admin-app.js';
import { generateKey } from '../../../spiffe/keys.js';

let fx: AdminFixture;
afterEach(async () => fx?.close());

describe('authorities', () => {
  it('refuses an early activation with 409, and activates when forced by query or body', async () => {
    fx = await startAdminFixture();
    const prepared = await fx.app.inject({ method: 'POST', url: '/v1/authorities/x509/prepare' });
    expect(prepared.statusCode).toBe(200);
    expect(prepared.json().authority.safe_to_activate_at).toBeGreaterThan(Date.now() / 1000);
    const early = await fx.app.inject({ method: 'POST', url: '/v1/authorities/x509/activate' });
    expect(early.statusCode).toBe(409);
    expect(early.json().error).toMatchObject({
      code: 'ERR_AUTHORITY_STATE',
      message: expect.stringContaining('safe to activate at'),
    });
    const bad = await fx.app.inject({ method: 'POST', url: '/v1/authorities/x509/activate?force=yes' });
    expect(bad.statusCode).toBe(400);
    const forced = await fx.app.inject({ method: 'POST', url: '/v1/authorities/x509/activate?force=true' });
    expect(forced.statusCode, forced.body).toBe(200);
    expect(fx.logLines.join('')).toContain('"msg":"Authority activation forced before its publish lead"');

    await fx.app.inject({ method: 'POST', url: '/v1/authorities/jwt/prepare' });
    const byBody = await fx.app.inject({
      method: 'POST',
      url: '/v1/authorities/jwt/activate',
      payload: { force: true },
    });
    expect(byBody.statusCode, byBody.body).toBe(200);
  });

  it("refuses a revoke while the server's SVID chains to the authority, and shows why", async () => {
    fx = await startAdminFixture();
    const oldId = fx.ca.x509Authority.id;
    fx.ca.signServerSvid({ publicKey: generateKey('ec-p256'), ttlMs: 3_600_000 });
    await fx.app.inject({ method: 'POST', url: '/v1/authorities/x509/prepare' });
    await fx.app.inject({ method: 'POST', url: '/v1/authorities/x509/activate', payload: { force: true } });
    await fx.app.inject({ method: 'POST', url: `/v1/authorities/x509/${oldId}/taint` });
    const shown = (await fx.app.inject({ method: 'GET', url: '/v1/authorities' })).json();
    expect(shown.x509[0]).toMatchObject({
      id: oldId,
      dependents: { agents: 0, unknown_agents: 0, server_svid: true },
    });
    const refused = await fx.app.inject({ method: 'POST', url: `/v1/authorities/x509/${oldId}/revoke` });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.message).toContain("the server's own SVID");
    const forced = await fx.app.inject({
      method: 'POST',
      url: `/v1/authorities/x509/${oldId}/revoke`,
      payload: { force: true },
    });
    expect(forced.statusCode, forced.body).toBe(200);
  });
});
