import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDataStore } from '../../../server/datastore/index.js';
import { ManualClock } from '../../../spiffe/clock.js';
import { SigilError } from '../../../spiffe/errors.js';
import { parseTrustDomain } from '../../../spiffe/id.js';
import type { JoinTokenReader, NodeAttestContext } from '../types.js';
import { createJoinTokenAgent } from './agent.js';
import { createJoinTokenServer } from './server.js';

const NOW = 1_750_000_000_000;
const TOKEN = '6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f';

/** The TokenStore read contract in a few lines: unknown tokens are not found, expired ones refused. */
function memoryTokens(
  tokens: Record<string, { expiresAtMs: number; spiffeId: string | null }>,
): JoinTokenReader & {
  lookups: string[];
} {
  const lookups: string[] = [];
  return {
    lookups,
    async fetchJoinToken(token, nowMs) {
      lookups.push(token);
      const found = tokens[token];
      if (found === undefined) throw new SigilError('ERR_TOKEN_NOT_FOUND', 'join token not found');
      if (found.expiresAtMs <= nowMs) throw new SigilError('ERR_TOKEN_EXPIRED', 'join token expired');
      return { spiffeId: found.spiffeId };
    },
  };
}

function context(nowMs = NOW): NodeAttestContext {
  return {
    trustDomain: parseTrustDomain('example.org'),
    nowMs,
    signal: new AbortController().signal,
    challenge: async () => {
      throw new Error('join_token must not send a challenge');
    },
  };
}

async function refusal(promise: Promise<unknown>): Promise<SigilError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SigilError);
  return err as SigilError;
}

describe('join_token server', () => {
  it('accepts a valid token, giving its alias and no selectors, and leaves spending it to the server', async () => {
    const tokens = memoryTokens({
      [TOKEN]: { expiresAtMs: NOW + 60_000, spiffeId: 'spiffe://example.org/rack/7' },
    });
    const server = createJoinTokenServer(undefined, { joinTokens: tokens });
    const agent = createJoinTokenAgent({ token: TOKEN });

    const attestation = await server.attest(await agent.payload(), context());
    expect(attestation).toEqual({
      agentPath: `/sigil/agent/join_token/${TOKEN}`,
      selectors: [],
      canReattest: false,
      aliases: ['spiffe://example.org/rack/7'],
      joinToken: TOKEN,
    });
  });

  it('refuses an unknown or spent token without echoing it', async () => {
    const server = createJoinTokenServer({}, { joinTokens: memoryTokens({}) });
    const err = await refusal(server.attest(Buffer.from(TOKEN), context()));
    expect(err.code).toBe('ERR_PERMISSION_DENIED');
    expect(err.message).toBe('join_token: join token is unknown or already used');
  });

  it('gives no alias when the token has none', async () => {
    const server = createJoinTokenServer(
      {},
      { joinTokens: memoryTokens({ [TOKEN]: { expiresAtMs: NOW + 1, spiffeId: null } }) },
    );
    const attestation = await server.attest(Buffer.from(TOKEN), context());
    expect(attestation.aliases).toEqual([]);
  });

  it('refuses an expired token without echoing it', async () => {
    const server = createJoinTokenServer(
      {},
      { joinTokens: memoryTokens({ [TOKEN]: { expiresAtMs: NOW, spiffeId: null } }) },
    );
    const err = await refusal(server.attest(Buffer.from(TOKEN), context()));
    expect(err.code).toBe('ERR_PERMISSION_DENIED');
    expect(err.message).toBe('join_token: join token expired');
    expect(err.message).not.toContain(TOKEN);
  });

  it.each([
    ['empty', ''],
    ['too long', 'a'.repeat(129)],
    ['a dot segment', '..'],
    ['a slash', 'abc/def'],
    ['whitespace', `${TOKEN}\n`],
    ['non-ASCII', 'tökén'],
  ])('refuses a malformed token (%s) before touching the store', async (_, token) => {
    const tokens = memoryTokens({});
    const server = createJoinTokenServer({}, { joinTokens: tokens });
    const err = await refusal(server.attest(Buffer.from(token), context()));
    expect(err.code).toBe('ERR_PERMISSION_DENIED');
    expect(err.message).toBe('join_token: payload is not a well-formed join token');
    expect(tokens.lookups).toEqual([]);
  });

  it('accepts a token of exactly 128 characters', async () => {
    const token = 'A'.repeat(128);
    const server = createJoinTokenServer(
      {},
      { joinTokens: memoryTokens({ [token]: { expiresAtMs: NOW + 1, spiffeId: null } }) },
    );
    expect((await server.attest(Buffer.from(token), context())).agentPath).toBe(
      `/sigil/agent/join_token/${token}`,
    );
  });

  it('passes datastore failures through unchanged', async () => {
    const failing: JoinTokenReader = {
      async fetchJoinToken() {
        throw new SigilError('ERR_DATASTORE', 'disk on fire');
      },
    };
    const err = await refusal(
      createJoinTokenServer({}, { joinTokens: failing }).attest(Buffer.from(TOKEN), context()),
    );
    expect(err.code).toBe('ERR_DATASTORE');
  });

  it('takes no settings', () => {
    expect(() => createJoinTokenServer({ ttl: '1h' }, { joinTokens: memoryTokens({}) })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: 'node_attestors.join_token.ttl: unknown key (this attestor takes no settings)',
      }),
    );
    expect(() => createJoinTokenServer('yes', { joinTokens: memoryTokens({}) })).toThrow(
      'node_attestors.join_token: must be a mapping (got "yes")',
    );
  });
});

describe('join_token with the SQLite datastore', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('reads stored tokens without spending them, and refuses expired and spent ones', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sigil-join-token-'));
    const clock = new ManualClock(NOW);
    const store = await openDataStore({ kind: 'sqlite', path: path.join(dir, 'ds.sqlite3') }, clock);
    try {
      await store.createJoinToken({
        token: TOKEN,
        expiresAtMs: NOW + 1_000,
        spiffeId: null,
        createdAtMs: NOW,
      });
      const server = createJoinTokenServer({}, { joinTokens: store });
      expect((await server.attest(Buffer.from(TOKEN), context())).joinToken).toBe(TOKEN);
      expect((await server.attest(Buffer.from(TOKEN), context())).joinToken).toBe(TOKEN);
      expect((await refusal(server.attest(Buffer.from(TOKEN), context(NOW + 1_000)))).message).toBe(
        'join_token: join token expired',
      );
      await store.commitAttestation({
        joinToken: TOKEN,
        nowMs: NOW,
        node: {
          spiffeId: `spiffe://example.org/sigil/agent/join_token/${TOKEN}`,
          attestationType: 'join_token',
          certSerial: '01',
          certNotAfterMs: NOW + 60_000,
          selectors: [],
          banned: false,
          canReattest: false,
          createdAtMs: NOW,
          updatedAtMs: NOW,
        },
        aliasEntries: [],
      });
      expect((await refusal(server.attest(Buffer.from(TOKEN), context()))).message).toBe(
        'join_token: join token is unknown or already used',
      );
    } finally {
      await store.close();
    }
  });
});

describe('join_token agent', () => {
  it('sends the token as UTF-8 and refuses challenges', async () => {
    const agent = createJoinTokenAgent({ token: TOKEN });
    expect(agent.name).toBe('join_token');
    expect((await agent.payload()).toString('utf8')).toBe(TOKEN);
    await expect(agent.respond(Buffer.from('x'))).rejects.toMatchObject({ code: 'ERR_INPUT_INVALID' });
  });

  it.each([
    [{}, 'node_attestors.join_token.token: is required'],
    [{ token: 42 }, 'node_attestors.join_token.token: must be a non-empty string (got 42)'],
    [{ token: TOKEN, tokn: 'x' }, 'node_attestors.join_token.tokn: unknown key (known keys: token)'],
    [
      { token: 'bad token!' },
      'node_attestors.join_token.token: must be letters, digits, "-" or "_", at most 128 characters',
    ],
  ])('rejects config %j', (raw, message) => {
    expect(() => createJoinTokenAgent(raw)).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID', message }),
    );
  });

  it('never puts a malformed secret in its error', () => {
    expect(() => createJoinTokenAgent({ token: 'secret value' })).toThrow(
      expect.not.objectContaining({ message: expect.stringContaining('secret value') }),
    );
  });
});
