import { execFileSync } from 'node:child_process';
import { createHash, createHmac, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SigilError } from '../../../spiffe/errors.js';
import { parseTrustDomain } from '../../../spiffe/id.js';
import { formatSelector } from '../../../spiffe/selector.js';
import type { NodeAttestation, NodeAttestContext, NodeAttestorServer } from '../types.js';
import { createK8sSatAgent } from './agent.js';
import { createK8sSatServer } from './server.js';

const NOW_MS = 1_750_000_000_000;
const NOW = NOW_MS / 1000;
const POD_UID = '1b7c0e2a-6f3d-4b8e-9a11-2c3d4e5f6a7b';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });

let dir: string;
const file = (name: string) => path.join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sigil-k8s-sat-'));
  // Three encodings the API server's key can come in: PKCS#1 RSA, SPKI, and a certificate (made by openssl).
  writeFileSync(file('sa-rsa.pem'), rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }));
  writeFileSync(file('sa-ec.key'), ec.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  execFileSync(
    'openssl',
    ['req', '-x509', '-new', '-key', 'sa-ec.key', '-subj', '/CN=sa', '-days', '1', '-out', 'sa-ec.crt'],
    {
      cwd: dir,
      stdio: 'ignore',
    },
  );
  writeFileSync(file('sa-ec-spki.pem'), ec.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(
    file('sa-p384.pem'),
    generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }),
  );
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function signToken(
  claims: Record<string, unknown>,
  alg: 'RS256' | 'ES256' = 'RS256',
  key?: KeyObject,
): string {
  const input = `${b64url({ alg, kid: 'k1' })}.${b64url(claims)}`;
  const signature =
    alg === 'ES256'
      ? sign('sha256', Buffer.from(input), { key: key ?? ec.privateKey, dsaEncoding: 'ieee-p1363' })
      : sign('sha256', Buffer.from(input), key ?? rsa.privateKey);
  return `${input}.${signature.toString('base64url')}`;
}

function projectedClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: 'https://kubernetes.default.svc.cluster.local',
    sub: 'system:serviceaccount:sigil:agent',
    aud: ['sigil-server'],
    exp: NOW + 600,
    iat: NOW - 10,
    nbf: NOW - 10,
    jti: 'c0ffee00-1111-2222-3333-444455556666',
    'kubernetes.io': {
      namespace: 'sigil',
      serviceaccount: { name: 'agent', uid: '9e8d7c6b-0000-1111-2222-333344445555' },
      pod: { name: 'sigil-agent-x7k2p', uid: POD_UID },
      node: { name: 'node-1', uid: 'aa00bb11-cc22-dd33-ee44-ff5566778899' },
    },
    ...overrides,
  };
}

const legacyClaims = {
  iss: 'kubernetes/serviceaccount',
  sub: 'system:serviceaccount:sigil:agent',
  'kubernetes.io/serviceaccount/namespace': 'sigil',
  'kubernetes.io/serviceaccount/secret.name': 'agent-token-abcde',
  'kubernetes.io/serviceaccount/service-account.name': 'agent',
  'kubernetes.io/serviceaccount/service-account.uid': '9e8d7c6b-0000-1111-2222-333344445555',
};

function server(): NodeAttestorServer {
  return createK8sSatServer({
    clusters: {
      prod: { service_account_key_files: [file('sa-rsa.pem'), file('sa-ec.crt')] },
      edge: {
        service_account_key_files: [file('sa-ec-spki.pem')],
        audience: 'edge-sigil',
        allowed_service_accounts: ['sigil:agent', 'infra:node-agent'],
      },
      legacy: { service_account_key_files: [file('sa-rsa.pem')], allow_legacy_tokens: true },
    },
  });
}

function context(): NodeAttestContext {
  return {
    trustDomain: parseTrustDomain('example.org'),
    nowMs: NOW_MS,
    signal: new AbortController().signal,
    challenge: async () => {
      throw new Error('k8s_sat must not send a challenge');
    },
  };
}

function attest(token: string, cluster = 'prod'): Promise<NodeAttestation> {
  return server().attest(Buffer.from(JSON.stringify({ cluster, token })), context());
}

async function refusal(token: string, cluster = 'prod'): Promise<SigilError> {
  const err = await attest(token, cluster).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SigilError);
  const sigil = err as SigilError;
  expect(sigil.code).toBe('ERR_PERMISSION_DENIED');
  // The token is a bearer credential: neither it nor any of its parts may leak into a message.
  for (const part of token.split('.').filter((p) => p.length > 8)) expect(sigil.message).not.toContain(part);
  return sigil;
}

describe('k8s_sat server', () => {
  it('attests a projected RS256 token with exact selectors, keyed by pod UID', async () => {
    const attestation = await attest(signToken(projectedClaims()));
    expect(attestation.agentPath).toBe(`/sigil/agent/k8s_sat/prod/${POD_UID}`);
    expect(attestation.canReattest).toBe(true);
    expect(attestation.aliases).toEqual([]);
    expect(attestation.selectors.map(formatSelector)).toEqual([
      'k8s_sat:cluster:prod',
      'k8s_sat:agent_ns:sigil',
      'k8s_sat:agent_sa:agent',
      'k8s_sat:agent_pod_name:sigil-agent-x7k2p',
      `k8s_sat:agent_pod_uid:${POD_UID}`,
      'k8s_sat:agent_node_name:node-1',
      'k8s_sat:agent_node_uid:aa00bb11-cc22-dd33-ee44-ff5566778899',
    ]);
  });

  it('attests an ES256 token with a key read from a certificate, and one read as SPKI', async () => {
    expect((await attest(signToken(projectedClaims(), 'ES256'))).agentPath).toBe(
      `/sigil/agent/k8s_sat/prod/${POD_UID}`,
    );
    const edge = await attest(signToken(projectedClaims({ aud: 'edge-sigil' }), 'ES256'), 'edge');
    expect(edge.agentPath).toBe(`/sigil/agent/k8s_sat/edge/${POD_UID}`);
  });

  it('keys the agent ID by the jti when the token is not bound to a pod', async () => {
    const claims = projectedClaims();
    claims['kubernetes.io'] = { namespace: 'sigil', serviceaccount: { name: 'agent', uid: 'u1' } };
    const attestation = await attest(signToken(claims));
    const jtiHash = createHash('sha256').update('c0ffee00-1111-2222-3333-444455556666').digest('hex');
    expect(attestation.agentPath).toBe(`/sigil/agent/k8s_sat/prod/${jtiHash}`);
    expect(attestation.selectors.map(formatSelector)).toEqual([
      'k8s_sat:cluster:prod',
      'k8s_sat:agent_ns:sigil',
      'k8s_sat:agent_sa:agent',
    ]);
  });

  it('accepts a legacy token only where allow_legacy_tokens is set, keyed by the token hash', async () => {
    const token = signToken(legacyClaims);
    const attestation = await attest(token, 'legacy');
    expect(attestation.agentPath).toBe(
      `/sigil/agent/k8s_sat/legacy/${createHash('sha256').update(token).digest('hex')}`,
    );
    expect(attestation.selectors.map(formatSelector)).toEqual([
      'k8s_sat:cluster:legacy',
      'k8s_sat:agent_ns:sigil',
      'k8s_sat:agent_sa:agent',
    ]);
    expect((await refusal(token)).message).toBe(
      'k8s_sat: legacy service account token refused (cluster "prod" does not set allow_legacy_tokens)',
    );
  });

  const cases: [string, () => string, string, string?][] = [
    [
      'wrong audience',
      () => signToken(projectedClaims({ aud: ['kube-apiserver'] })),
      'k8s_sat: token audience ["kube-apiserver"] does not include "sigil-server"',
    ],
    [
      'no audience',
      () => signToken(projectedClaims({ aud: undefined })),
      'k8s_sat: token has no aud claim (expected "sigil-server")',
    ],
    [
      'expired',
      () => signToken(projectedClaims({ exp: NOW })),
      'k8s_sat: token expired at 2025-06-15T15:06:40.000Z (now 2025-06-15T15:06:40.000Z)',
    ],
    ['no exp', () => signToken(projectedClaims({ exp: undefined })), 'k8s_sat: token has no exp claim'],
    [
      'not yet valid',
      () => signToken(projectedClaims({ nbf: NOW + 3600 })),
      'k8s_sat: token is not valid until 2025-06-15T16:06:40.000Z (now 2025-06-15T15:06:40.000Z)',
    ],
    [
      'unknown key',
      () => signToken(projectedClaims(), 'RS256', stranger.privateKey),
      'k8s_sat: token signature does not verify with any service account key of cluster "prod"',
    ],
    [
      'no key for the alg',
      () => signToken(projectedClaims({ aud: 'edge-sigil' })),
      'k8s_sat: cluster "edge" has no service account key that can verify RS256',
      'edge',
    ],
    [
      'alg none',
      () => `${b64url({ alg: 'none' })}.${b64url(projectedClaims())}.`,
      'k8s_sat: token algorithm "none" is not allowed (allowed: RS256, ES256)',
    ],
    [
      'HS256 keyed with the public key',
      () => {
        const input = `${b64url({ alg: 'HS256' })}.${b64url(projectedClaims())}`;
        const mac = createHmac('sha256', rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }))
          .update(input)
          .digest('base64url');
        return `${input}.${mac}`;
      },
      'k8s_sat: token algorithm "HS256" is not allowed (allowed: RS256, ES256)',
    ],
    [
      'two parts',
      () => signToken(projectedClaims()).split('.').slice(0, 2).join('.'),
      'k8s_sat: token is not a compact JWS (expected three dot-separated parts)',
    ],
    [
      'padded base64',
      () => signToken(projectedClaims()).replace('.', '=.'),
      'k8s_sat: token header is not unpadded base64url',
    ],
    [
      'non-JSON claims',
      () => `${b64url({ alg: 'RS256' })}.${Buffer.from('not json').toString('base64url')}.AAAA`,
      'k8s_sat: token claims is not valid JSON',
    ],
    [
      'crit header',
      () => `${b64url({ alg: 'RS256', crit: ['x'] })}.${b64url(projectedClaims())}.AAAA`,
      'k8s_sat: token header has "crit" extensions, which are not supported',
    ],
    [
      'tampered claims',
      () => {
        const [h, , s] = signToken(projectedClaims()).split('.');
        return `${h}.${b64url(projectedClaims({ 'kubernetes.io': { namespace: 'kube-system', serviceaccount: { name: 'admin' } } }))}.${s}`;
      },
      'k8s_sat: token signature does not verify with any service account key of cluster "prod"',
    ],
    ['no iss', () => signToken(projectedClaims({ iss: undefined })), 'k8s_sat: token has no iss claim'],
    [
      'sub mismatch',
      () => signToken(projectedClaims({ sub: 'system:serviceaccount:kube-system:admin' })),
      'k8s_sat: token sub "system:serviceaccount:kube-system:admin" does not match its service account claims ("system:serviceaccount:sigil:agent")',
    ],
    [
      'no service account claims',
      () => signToken({ iss: 'x', sub: 'y', exp: NOW + 60, aud: 'sigil-server' }),
      'k8s_sat: token has no Kubernetes service account claims (neither projected nor legacy)',
    ],
    [
      'disallowed service account',
      () => {
        const claims = projectedClaims({ aud: 'edge-sigil', sub: 'system:serviceaccount:default:web' });
        claims['kubernetes.io'] = { namespace: 'default', serviceaccount: { name: 'web', uid: 'u' } };
        return signToken(claims, 'ES256');
      },
      'k8s_sat: service account "default:web" is not allowed in cluster "edge"',
      'edge',
    ],
    [
      'unknown cluster',
      () => signToken(projectedClaims()),
      'k8s_sat: cluster "staging" is not configured (configured: prod, edge, legacy)',
      'staging',
    ],
  ];

  it.each(cases)('refuses a token: %s', async (_, make, message, cluster) => {
    expect((await refusal(make(), cluster)).message).toBe(message);
  });

  it.each([
    ['not JSON', 'nope', /^k8s_sat: malformed payload: payload: invalid JSON/],
    [
      'no token',
      '{"cluster":"prod"}',
      /^k8s_sat: malformed payload: payload "token" must be a non-empty string$/,
    ],
    ['extra member', '{"cluster":"prod","token":"a.b.c","x":1}', /payload member "x" is not allowed/],
    ['too large', JSON.stringify({ cluster: 'prod', token: 'a'.repeat(20_000) }), /at most 16384/],
  ])('refuses a malformed payload: %s', async (_, payload, message) => {
    await expect(server().attest(Buffer.from(payload), context())).rejects.toMatchObject({
      code: 'ERR_PERMISSION_DENIED',
      message: expect.stringMatching(message),
    });
  });
});

describe('k8s_sat agent', () => {
  it('reads the token file afresh for each attestation, and the server accepts it', async () => {
    const tokenFile = file('token');
    const agent = createK8sSatAgent({ cluster: 'prod', token_path: tokenFile });
    const first = signToken(projectedClaims());
    writeFileSync(tokenFile, `${first}\n`);
    expect(JSON.parse((await agent.payload()).toString())).toEqual({ cluster: 'prod', token: first });
    const second = signToken(projectedClaims({ jti: 'rotated' }));
    writeFileSync(tokenFile, second);
    const payload = await agent.payload();
    expect(JSON.parse(payload.toString()).token).toBe(second);
    expect((await server().attest(payload, context())).agentPath).toBe(
      `/sigil/agent/k8s_sat/prod/${POD_UID}`,
    );
    await expect(agent.respond(Buffer.alloc(1))).rejects.toMatchObject({ code: 'ERR_INPUT_INVALID' });
  });

  it('reports a missing or empty token file as unavailable', async () => {
    await expect(
      createK8sSatAgent({ cluster: 'prod', token_path: file('absent') }).payload(),
    ).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      message: `k8s_sat: cannot read token file ${file('absent')}: ENOENT`,
    });
    writeFileSync(file('empty'), '\n');
    await expect(
      createK8sSatAgent({ cluster: 'prod', token_path: file('empty') }).payload(),
    ).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
    });
  });

  it('defaults token_path to the projected token mount', async () => {
    let read = '';
    const agent = createK8sSatAgent({ cluster: 'prod' }, 'node_attestors.k8s_sat', async (f) => {
      read = f;
      return 'a.b.c';
    });
    await agent.payload();
    expect(read).toBe('/var/run/secrets/tokens/sigil-agent');
  });

  it.each([
    [{}, 'node_attestors.k8s_sat.cluster: is required'],
    [
      { cluster: 'prod', token_file: '/t' },
      'node_attestors.k8s_sat.token_file: unknown key (known keys: cluster, token_path)',
    ],
    [
      { cluster: '../x' },
      'node_attestors.k8s_sat.cluster: cluster name "../x" must be 1-63 letters, digits, ".", "-" or "_", starting with a letter or digit',
    ],
    [
      { cluster: 'prod', token_path: false },
      'node_attestors.k8s_sat.token_path: must be a non-empty string (got false)',
    ],
  ])('rejects config %j', (raw, message) => {
    expect(() => createK8sSatAgent(raw)).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID', message }),
    );
  });
});

describe('k8s_sat server config', () => {
  it.each([
    [{}, 'node_attestors.k8s_sat.clusters: is required (one entry per cluster)'],
    [{ clusters: {} }, 'node_attestors.k8s_sat.clusters: must name at least one cluster'],
    [{ clusters: [] }, 'node_attestors.k8s_sat.clusters: must be a mapping (got [])'],
    [
      { clusters: { prod: {} } },
      'node_attestors.k8s_sat.clusters.prod.service_account_key_files: is required (PEM public keys or certificates of the token signers)',
    ],
    [
      { clusters: { prod: { service_account_key_files: '/k.pem' } } },
      'node_attestors.k8s_sat.clusters.prod.service_account_key_files: must be a list of strings (got "/k.pem")',
    ],
    [
      { clusters: { prod: { service_account_key_files: ['/nope.pem'] } } },
      'node_attestors.k8s_sat.clusters.prod.service_account_key_files[0]: cannot read /nope.pem: ENOENT',
    ],
  ])('rejects %j', (raw, message) => {
    expect(() => createK8sSatServer(raw)).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID', message }),
    );
  });

  it('lists every problem of every cluster by dotted path', () => {
    expect(() =>
      createK8sSatServer({
        clusters: {
          prod: {
            service_account_key_files: [file('sa-rsa.pem')],
            audience: 5,
            allow_legacy_tokens: 'yes',
            extra: 1,
          },
          'bad/name': {
            service_account_key_files: [file('sa-p384.pem')],
            allowed_service_accounts: ['sigil'],
          },
        },
      }),
    ).toThrow(
      expect.objectContaining({
        message: [
          'node_attestors.k8s_sat has 6 problems',
          '  node_attestors.k8s_sat.clusters.prod.extra: unknown key (known keys: service_account_key_files, audience, allowed_service_accounts, allow_legacy_tokens)',
          '  node_attestors.k8s_sat.clusters.prod.audience: must be a non-empty string (got 5)',
          '  node_attestors.k8s_sat.clusters.prod.allow_legacy_tokens: must be true or false (got "yes")',
          '  node_attestors.k8s_sat.clusters.bad/name: cluster name "bad/name" must be 1-63 letters, digits, ".", "-" or "_", starting with a letter or digit',
          `  node_attestors.k8s_sat.clusters.bad/name.service_account_key_files[0]: ${file('sa-p384.pem')}: PEM block 0 holds a key that verifies neither RS256 (RSA >= 2048) nor ES256 (EC P-256)`,
          '  node_attestors.k8s_sat.clusters.bad/name.allowed_service_accounts[0]: "sigil" is not "namespace:name"',
        ].join('\n'),
      }),
    );
  });

  it('rejects a key file with a PEM block that is not a public key', () => {
    expect(() =>
      createK8sSatServer({ clusters: { prod: { service_account_key_files: [file('sa-ec.key')] } } }),
    ).toThrow(
      `node_attestors.k8s_sat.clusters.prod.service_account_key_files[0]: ${file('sa-ec.key')}: PEM block 0 ("PRIVATE KEY") is not a usable public key: expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE`,
    );
  });
});
