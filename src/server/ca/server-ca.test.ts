import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSpiffeId } from '../../spiffe/id.js';
import { validateJwtSvid } from '../../spiffe/jwt-svid.js';
import { generateKey } from '../../spiffe/keys.js';
import { describeCertificate, verifyX509Svid } from '../../spiffe/x509-svid.js';
import { caTestbed, HOUR } from './ca-testbed.test-support.js';
import { BACKDATE_MS, type ServerCa } from './server-ca.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const setup = () => caTestbed(cleanups);

describe('ServerCa', () => {
  it('creates a CA once and reloads the same one, with keys owner-only on disk', async () => {
    const { open, keysDir, store } = await setup();
    const first = await open();
    await first.close();
    const second = await open();
    expect(second.x509Authority).toEqual(first.x509Authority);
    expect(second.jwtAuthority).toEqual(first.jwtAuthority);
    expect(second.bundle().sequence).toBe(first.bundle().sequence);
    expect((await store.fetchBundle('example.org'))!.sequence).toBe(1);
    const files = readdirSync(keysDir);
    expect(files).toHaveLength(2);
    for (const f of files) expect(statSync(path.join(keysDir, f)).mode & 0o777).toBe(0o600);
  });

  it('signs leaves that verify against its bundle, backdated and capped at the CA expiry', async () => {
    const { open, clock } = await setup();
    const ca = await open();
    const issued = ca.signX509Svid({
      spiffeId: parseSpiffeId('spiffe://example.org/web'),
      publicKey: generateKey('ec-p256'),
    });
    const leaf = describeCertificate(issued.chain[0]!);
    expect(leaf.notBeforeMs).toBe(Math.floor((clock.nowMs() - BACKDATE_MS) / 1000) * 1000);
    expect(issued.expiresAtMs).toBe(clock.nowMs() + HOUR);
    const verified = verifyX509Svid(issued.chain, () => ca.bundle().x509Authorities, clock.nowMs());
    expect(verified.spiffeId.toString()).toBe('spiffe://example.org/web');

    const long = ca.signX509Svid({
      spiffeId: parseSpiffeId('spiffe://example.org/web'),
      publicKey: generateKey('ec-p256'),
      ttlMs: 48 * HOUR,
    });
    expect(long.expiresAtMs).toBe(ca.x509Authority.notAfterMs);
  });

  it('replaces an expired CA at start, drops it from the bundle and moves the sequence on', async () => {
    const { open, clock } = await setup();
    const first = await open();
    await first.close();
    await clock.advance(25 * HOUR);
    const second = await open();
    expect(second.x509Authority.id).not.toBe(first.x509Authority.id);
    expect(second.jwtAuthority.kid).not.toBe(first.jwtAuthority.kid);
    expect(second.bundle().x509Authorities).toHaveLength(1);
    expect(second.bundle().sequence).toBe(first.bundle().sequence + 1);
  });

  it('refuses to start with a key file that does not match its CA, naming what to restore', async () => {
    const { open, keysDir } = await setup();
    const ca = await open();
    const keyFile = readdirSync(keysDir).find((f) => f.startsWith('x509-ca-'))!;
    writeFileSync(
      path.join(keysDir, keyFile),
      generateKey('ec-p256').export({ format: 'pem', type: 'pkcs8' }),
    );
    await expect(open()).rejects.toMatchObject({
      code: 'ERR_CA_UNAVAILABLE',
      message: expect.stringContaining(ca.x509Authority.id),
    });
  });

  it('mints JWT-SVIDs in whole seconds that validate against the bundle', async () => {
    const { open, clock } = await setup();
    const ca = await open();
    const minted = ca.mintJwtSvid({
      spiffeId: parseSpiffeId('spiffe://example.org/web'),
      audience: ['a'],
      ttlMs: 90_500,
    });
    expect(minted.expiresAtMs % 1000).toBe(0);
    const ok = validateJwtSvid(minted.token, {
      audience: 'a',
      bundleFor: () => ca.bundle(),
      nowMs: clock.nowMs(),
    });
    expect(ok.kid).toBe(ca.jwtAuthority.kid);
    expect(() =>
      validateJwtSvid(minted.token, {
        audience: 'a',
        bundleFor: () => ca.bundle(),
        nowMs: clock.nowMs() + 200_000,
        leewayMs: 0,
      }),
    ).toThrow(expect.objectContaining({ code: 'ERR_JWT_EXPIRED' }));
  });
});

describe('ServerCa rotation (24h CA: prepare at 12h, activate at 20h)', () => {
  const webId = parseSpiffeId('spiffe://example.org/web');
  const ids = async (ca: ServerCa) =>
    (await ca.authorities()).x509.map((a) => `${a.state}${a.tainted ? '*' : ''}`);

  it('prepares and publishes the next CA at half-life, signs with it only after activation', async () => {
    const { open, clock, store } = await setup();
    const ca = await open();
    const first = ca.x509Authority.id;
    await clock.advance(12 * HOUR - 60_000);
    await ca.close();
    const before = await open();
    expect(await ids(before)).toEqual(['active']);
    await clock.advance(2 * 60_000);
    await settleRotation();
    expect(await ids(before)).toEqual(['active', 'prepared']);
    expect(before.bundle().x509Authorities).toHaveLength(2);
    expect(before.x509Authority.id).toBe(first);
    const journal = JSON.parse((await store.loadJournal())!.data);
    expect(journal.x509.map((a: { state: string }) => a.state)).toEqual(['active', 'prepared']);

    // A restart between prepare and activate resumes: same prepared CA, activated on schedule.
    await before.close();
    const resumed = await open();
    expect(await ids(resumed)).toEqual(['active', 'prepared']);
    const preparedId = (await resumed.authorities()).x509[1]!.id;
    await clock.advance(8 * HOUR);
    await settleRotation();
    expect(resumed.x509Authority.id).toBe(preparedId);
    expect(await ids(resumed)).toEqual(['old', 'active']);
    const leaf = resumed.signX509Svid({ spiffeId: webId, publicKey: generateKey('ec-p256') });
    expect(
      verifyX509Svid(leaf.chain, () => resumed.bundle().x509Authorities, clock.nowMs()).spiffeId.toString(),
    ).toBe(webId.toString());
    await resumed.close();
  });

  it('keeps an old CA until the last SVID it signed expires, then prunes it', async () => {
    const { open, clock } = await setup();
    const ca = await open();
    await ca.activate('x509').catch((err) => expect(err.code).toBe('ERR_AUTHORITY_STATE'));
    await ca.prepare('x509');
    const old = ca.x509Authority.id;
    ca.signX509Svid({ spiffeId: webId, publicKey: generateKey('ec-p256'), ttlMs: 2 * HOUR });
    await ca.activate('x509', { force: true });
    expect(await ids(ca)).toEqual(['old', 'active']);
    const oldView = (await ca.authorities()).x509[0]!;
    expect(oldView).toMatchObject({ id: old, nextEvent: 'prune' });
    expect(oldView.nextEventAtMs).toBe(clock.nowMs() + 2 * HOUR);
    await clock.advance(2 * HOUR - 1000);
    await settleRotation();
    expect(ca.bundle().x509Authorities).toHaveLength(2);
    await clock.advance(2000);
    await settleRotation();
    expect(await ids(ca)).toEqual(['active']);
    expect(ca.bundle().x509Authorities).toHaveLength(1);
    await ca.close();
  });

  it('taints and revokes only old authorities, with errors that say what to do', async () => {
    const { open } = await setup();
    const ca = await open();
    const active = ca.x509Authority.id;
    await expect(ca.taint('x509', active)).rejects.toMatchObject({
      code: 'ERR_AUTHORITY_STATE',
      message: expect.stringContaining('only an old authority'),
    });
    await expect(ca.taint('x509', 'nope')).rejects.toMatchObject({ code: 'ERR_AUTHORITY_NOT_FOUND' });
    await ca.prepare('x509');
    await ca.activate('x509', { force: true });
    await expect(ca.revoke('x509', active)).rejects.toMatchObject({
      message: expect.stringContaining('taint it first'),
    });
    await ca.taint('x509', active);
    expect(ca.taintedX509Authorities()).toEqual([active]);
    expect(await ids(ca)).toEqual(['old*', 'active']);
    await ca.revoke('x509', active);
    expect(await ids(ca)).toEqual(['active']);
    expect(ca.bundle().x509Authorities).toHaveLength(1);
    await ca.close();
  });

  it('rotates JWT keys too, keeping the old key for validation', async () => {
    const { open } = await setup();
    const ca = await open();
    const token = ca.mintJwtSvid({ spiffeId: webId, audience: ['a'] }).token;
    await ca.prepare('jwt');
    await ca.activate('jwt', { force: true });
    expect(ca.bundle().jwtAuthorities).toHaveLength(2);
    expect(
      validateJwtSvid(token, {
        audience: 'a',
        bundleFor: () => ca.bundle(),
        nowMs: Date.UTC(2026, 0, 1),
      }).spiffeId.toString(),
    ).toBe(webId.toString());
    await ca.close();
  });
});

/** Rotation steps do real file I/O (keys); give them a moment after the clock moved. */
async function settleRotation(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 300));
}
