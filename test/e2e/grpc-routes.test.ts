// GRPCRoute through real sidecars (issue 12): a grpc-js client calls helloworld.Greeter through its
// sidecar's outbound `http2` listener; a routes file splits SayHello between two backend services
// (v1 and v2 of the Greeter, real grpc-js servers behind their own inbound listeners of one backend
// sidecar), forces v2 on `x-canary: 1`, sends SayGoodbye to v2 and every other method to v1.
// v2's inbound listener relays per stream (its policy names paths), v1's pipes the h2c opaquely:
// the outbound relay works with both. All processes are real; ports come from the started lines.
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProcess, makeSharedDir, waitFor } from '../support/agent-harness.js';
import { type GreeterClient, type GreeterServer, greeterClient, startGreeter } from '../support/greeter.js';
import { type ServerProcess, startServerProcess } from '../support/harness.js';
import { startAgentWithEntries, TD } from '../support/registration.js';
import { type SidecarProcess, startSidecarProcess, stopSidecars } from '../support/sidecar-harness.js';
import { scrape, total } from '../support/traffic.js';

const BACKEND_UID = 1;
const CLIENT_UID = 65534;
const BACKEND_ID = `${TD}/backend-proxy`;
const CLIENT_ID = `${TD}/client-proxy`;

/** The routes file; `goodbyeTo` is where SayGoodbye goes (the reload test moves it). */
const routesFile = (goodbyeTo = 'greeter-v2') => `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: greeter }
spec:
  parentRefs: [{ group: "", kind: Service, name: greeter }]
  rules:
    - name: canary
      matches:
        - method: { service: helloworld.Greeter, method: SayHello }
          headers: [{ name: x-canary, value: "1" }]
      backendRefs: [{ name: greeter-v2 }]
    - name: goodbye-on-v2
      matches: [{ method: { service: helloworld.Greeter, method: SayGoodbye } }]
      backendRefs: [{ name: ${goodbyeTo} }]
    - name: hello-split
      matches: [{ method: { service: helloworld.Greeter, method: SayHello } }]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: { set: [{ name: x-route, value: hello-split }] }
      backendRefs: [{ name: greeter-v1, weight: 70 }, { name: greeter-v2, weight: 30 }]
    - name: rest-on-v1
      matches: [{ method: { service: helloworld.Greeter } }]
      backendRefs: [{ name: greeter-v1 }]
`;

let root: { dir: string; cleanup(): void } | undefined;
let server: ServerProcess | undefined;
let agent: AgentProcess | undefined;
const sidecars: SidecarProcess[] = [];
const greeters: Record<string, GreeterServer> = {};
const clients: GreeterClient[] = [];
let clientSidecar: SidecarProcess;
let backendSidecar: SidecarProcess;
let outboundPort = 0;
let routesPath = '';

const startedLine = (sidecar: SidecarProcess) =>
  sidecar.lines('Sigil proxy started')[0] as { listeners: Record<string, number>; adminPort: number };
const listenersOf = (sidecar: SidecarProcess) => startedLine(sidecar).listeners;

beforeAll(async () => {
  root = makeSharedDir('sigil-grpc-routes-');
  server = await startServerProcess({ dataDir: path.join(root.dir, 'server') });
  agent = await startAgentWithEntries(server, root.dir, [
    ['backend-proxy', BACKEND_UID],
    ['client-proxy', CLIENT_UID],
  ]);
  for (const version of ['v1', 'v2']) greeters[version] = await startGreeter(version);
  const { v1, v2 } = greeters as { v1: GreeterServer; v2: GreeterServer };

  // A policy naming paths on v2's app port makes its inbound listener relay per stream.
  const policy = path.join(root.dir, 'policy.yaml');
  writeFileSync(
    policy,
    `policies:
  - name: client
    action: ALLOW
    rules:
      - from: { principals: ["${CLIENT_ID}"] }
  - name: greeter-v2-methods
    action: ALLOW
    rules:
      - to: { ports: [${v2.port}], paths: ["/helloworld.Greeter/*"] }
`,
  );
  chmodSync(policy, 0o644);
  const backend = await startSidecarProcess(
    BACKEND_UID,
    root.dir,
    'backend',
    `workload_api: unix://${agent.socketPath}
admin: "127.0.0.1:0"
policy_file: ${policy}
inbound:
  - { name: v1, listen: "127.0.0.1:0", protocol: http2, app: "127.0.0.1:${v1.port}" }
  - { name: v2, listen: "127.0.0.1:0", protocol: http2, app: "127.0.0.1:${v2.port}" }
`,
  );
  sidecars.push(backend);
  backendSidecar = backend;
  const inbound = listenersOf(backend);
  const service = (name: string, listener: string) => ({
    name,
    server_ids: [BACKEND_ID],
    endpoints: [{ address: `127.0.0.1:${inbound[listener]}` }],
  });
  routesPath = path.join(root.dir, 'routes.yaml');
  writeFileSync(routesPath, routesFile());
  chmodSync(routesPath, 0o644);
  clientSidecar = await startSidecarProcess(
    CLIENT_UID,
    root.dir,
    'client',
    `workload_api: unix://${agent.socketPath}
admin: "127.0.0.1:0"
routes_file: ${routesPath}
outbound: [{ name: greeter, listen: "127.0.0.1:0", protocol: http2, service: greeter }]
services: ${JSON.stringify([service('greeter', 'v1'), service('greeter-v1', 'v1'), service('greeter-v2', 'v2')])}
`,
  );
  sidecars.push(clientSidecar);
  outboundPort = listenersOf(clientSidecar).greeter!;
}, 120_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await stopSidecars(sidecars);
  for (const greeter of Object.values(greeters)) await greeter.stop();
  await agent?.stop();
  await server?.stop();
  root?.cleanup();
});

/** A new grpc-js client (its own connection) to the client sidecar's outbound listener. */
function connect(): GreeterClient {
  const client = greeterClient(outboundPort);
  clients.push(client);
  return client;
}

describe('GRPCRoute through the sidecars', () => {
  it('splits SayHello 70/30 between v1 and v2 over a few hundred calls', async () => {
    const client = connect();
    const versions: string[] = [];
    // 30 batches of 20 concurrent calls: streams multiplexed on one app connection.
    for (let batch = 0; batch < 30; batch++) {
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) => client.sayHello(`n${batch}-${i}`)),
      );
      for (const reply of replies) {
        versions.push(reply.version);
        // The rule's RequestHeaderModifier reached the app.
        expect(reply.metadata['x-route']).toBe('hello-split');
      }
    }
    const v2Share = versions.filter((v) => v === 'v2').length / versions.length;
    // 600 calls: the standard deviation of the share is under 2%; 6% is three of them.
    expect(Math.abs(v2Share - 0.3)).toBeLessThan(0.06);
    expect(greeters.v1!.calls.get('SayHello')! + greeters.v2!.calls.get('SayHello')!).toBe(600);
  });

  it('forces v2 with x-canary: 1', async () => {
    const client = connect();
    for (let i = 0; i < 20; i++) {
      const reply = await client.sayHello(`c${i}`, { 'x-canary': '1' });
      expect(reply.version).toBe('v2');
      expect(reply.metadata['x-route']).toBeUndefined();
    }
  });

  it('routes by method: SayGoodbye to v2, the other methods to v1', async () => {
    const client = connect();
    for (let i = 0; i < 10; i++) expect((await client.sayGoodbye(`g${i}`)).version).toBe('v2');
    expect(greeters.v1!.calls.get('SayGoodbye')).toBeUndefined();
    const streamed = await client.streamHellos('s');
    expect(streamed.replies.map((r) => r.version)).toEqual(['v1', 'v1', 'v1']);
  });

  it('relays a server-streaming call with its messages, trailers and status', async () => {
    const streamed = await connect().streamHellos('stream');
    expect(streamed.replies.map((r) => r.message)).toEqual([
      'hello stream #0',
      'hello stream #1',
      'hello stream #2',
    ]);
    // The server ended with FAILED_PRECONDITION and trailing metadata, in the trailers.
    expect(streamed).toMatchObject({ code: 9, details: 'done streaming from v1', servedBy: 'v1' });
  });

  it('cancels the backend call when the client cancels', async () => {
    const client = connect();
    const before = greeters.v1!.cancelled;
    const call = client.hang();
    await waitFor(
      () => greeters.v1!.hanging > 0,
      15_000,
      () => 'the Hang call never reached v1',
    );
    call.cancel();
    expect((await call.done).code).toBe(1);
    await waitFor(
      () => greeters.v1!.cancelled > before,
      15_000,
      () => `v1 never saw the cancel:\n${clientSidecar.logs().slice(-2000)}`,
    );
    // The connection is still good.
    expect((await client.sayGoodbye('after')).version).toBe('v2');
  });

  it('relays per stream on the client side, and both inbound modes took the streams', async () => {
    const requests = 'sigil_proxy_requests_total';
    const pipes = 'sigil_proxy_tcp_connections_total';
    const client = await scrape(startedLine(clientSidecar).adminPort);
    // Every call so far was a request of the outbound listener; none of its connections was piped.
    expect(total(client, requests, { listener: 'greeter', direction: 'outbound' })).toBeGreaterThanOrEqual(
      600,
    );
    expect(total(client, pipes, { listener: 'greeter' })).toBe(0);
    const backend = await scrape(startedLine(backendSidecar).adminPort);
    // v2's listener relayed each stream (its policy names paths); v1's piped whole connections.
    expect(total(backend, requests, { listener: 'v2', direction: 'inbound' })).toBeGreaterThan(100);
    expect(total(backend, requests, { listener: 'v1' })).toBe(0);
    expect(total(backend, pipes, { listener: 'v1' })).toBeGreaterThan(0);
  });

  it('answers UNIMPLEMENTED for a method no route takes', async () => {
    const client = connect();
    const err = (await client.callPath('/helloworld.Other/Missing').catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(12);
    // The sidecar answered, not a Greeter (which would say UNIMPLEMENTED too, without this header).
    expect(err.metadata.get('x-sigil-error')).toEqual(['no-route']);
    expect((await client.sayGoodbye('still')).version).toBe('v2');
  });

  it('applies a routes change without a restart, to streams of open connections too', async () => {
    const open = connect();
    expect((await open.sayGoodbye('before')).version).toBe('v2');
    writeFileSync(routesPath, routesFile('greeter-v1'));
    await waitFor(
      async () => (await open.sayGoodbye('after')).version === 'v1',
      20_000,
      () => `SayGoodbye still goes to v2:\n${clientSidecar.logs().slice(-2000)}`,
    );
    expect((await connect().sayGoodbye('fresh')).version).toBe('v1');
  });
});
