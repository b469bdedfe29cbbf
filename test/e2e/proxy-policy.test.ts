// The backend sidecar's policy file decides, and reloads without a restart (see
// test/support/proxy-mesh.ts): gRPC authorized per method, a denied path refused with 403, a broken
// file keeping the old policy, and the admin port reporting the decisions. The tests run in order
// on one mesh: each restores the starting policy, and the last reads the counts the others left.
import { writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/agent-harness.js';
import {
  allowPolicy,
  backLogs,
  ECHO_SERVICE,
  get,
  policyPath,
  ports,
  TD,
  useProxyMesh,
} from '../support/proxy-mesh.js';

useProxyMesh();

describe('sigil-proxy sidecars', () => {
  it('authorizes gRPC per method once a policy names paths on its port', async () => {
    type EchoClient = {
      Say(req: Buffer, cb: (err: grpc.ServiceError | null, res: Buffer) => void): void;
      close(): void;
    };
    const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
    // Each attempt is a new client, so a new connection: the pipe-or-relay choice is per connection.
    const say = async (): Promise<string | number> => {
      const client = new Client(
        `127.0.0.1:${ports.outGrpc}`,
        grpc.credentials.createInsecure(),
      ) as unknown as EchoClient;
      try {
        return await new Promise<string | number>((resolve) =>
          client.Say(Buffer.from('hi'), (err, res) => resolve(err ? err.code : res.toString())),
        );
      } finally {
        client.close();
      }
    };
    writeFileSync(
      policyPath,
      allowPolicy(`  - name: no-say
    action: DENY
    rules:
      - to: { ports: [${ports.grpc}], paths: ["/test.Echo/Say"] }
`),
    );
    await waitFor(
      async () => (await say()) === grpc.status.PERMISSION_DENIED,
      15_000,
      () => 'gRPC method not denied',
    );
    await waitFor(
      () =>
        backLogs()
          .split('\n')
          .some(
            (line) =>
              line.includes('"msg":"Request denied by policy"') && line.includes('"path":"/test.Echo/Say"'),
          ),
      10_000,
      () => `no per-method denial logged:\n${backLogs()}`,
    );
    writeFileSync(policyPath, allowPolicy());
    await waitFor(
      async () => (await say()) === 'echo:hi',
      15_000,
      () => 'gRPC method still denied',
    );
  });

  it('refuses a path the policy denies with 403 and logs both identities', async () => {
    const res = await get(ports.outHttp!, '/admin/users');
    expect(res.status).toBe(403);
    expect(res.body).not.toContain('method');
    // The sidecar logs asynchronously: wait for the line rather than racing it.
    await waitFor(
      () => /"msg":"Request denied by policy"/.test(backLogs()),
      10_000,
      () => `no denial logged:\n${backLogs()}`,
    );
  });

  it('applies a policy change without a restart, and keeps the old policy when the new file is broken', async () => {
    writeFileSync(policyPath, 'policies: [ { name: broken, action: MAYBE } ]\n');
    await waitFor(
      () => /Policy file rejected/.test(backLogs()),
      15_000,
      () => `no rejection logged:\n${backLogs()}`,
    );
    expect((await get(ports.outHttp!, '/hello')).status).toBe(200);
    writeFileSync(
      policyPath,
      `policies:\n  - name: nobody\n    action: DENY\n    rules:\n      - from: { principals: ["${TD}/frontend-proxy"] }\n`,
    );
    await waitFor(
      async () => (await get(ports.outHttp!, '/hello')).status === 403,
      15_000,
      () => 'policy change did not apply',
    );
    writeFileSync(policyPath, allowPolicy());
    await waitFor(
      async () => (await get(ports.outHttp!, '/hello')).status === 200,
      15_000,
      () => 'policy did not return',
    );
  });

  it('serves readiness, metrics and its config on the admin port', async () => {
    expect((await get(ports.backAdmin!, '/ready')).status).toBe(200);
    expect((await get(ports.backAdmin!, '/live')).status).toBe(200);
    const metrics = (await get(ports.backAdmin!, '/metrics')).body;
    expect(metrics).toMatch(/sigil_proxy_requests_total\{[^}]*\} [1-9]/);
    expect(metrics).toMatch(/sigil_proxy_authz_decisions_total\{[^}]*result="deny"[^}]*\} [1-9]/);
    const config = JSON.parse((await get(ports.backAdmin!, '/config')).body);
    expect(config.identity.spiffe_id).toBe(`${TD}/backend-proxy`);
    expect(config.policies.map((p: { name: string }) => p.name)).toEqual(['frontend-only', 'no-admin']);
  });
});
