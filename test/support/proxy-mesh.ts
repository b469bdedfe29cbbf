// One mesh for the sidecar e2e tests: a server, an agent, and two applications each behind a Sigil
// sidecar, all real processes on loopback. The frontend's sidecar (uid 65534) and the backend's
// (uid 1) take their identities from the Workload API; traffic between them is mTLS, authorized by
// a policy file that reloads without a restart. Each test file that calls useProxyMesh() gets its
// own mesh, so files run apart; tests within a file share it and run in order.
import { chmodSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll } from 'vitest';
import { type AgentProcess, freePort, makeSharedDir } from './agent-harness.js';
import { type ServerProcess, startServerProcess } from './harness.js';
import { startAgentWithEntries } from './registration.js';
import { type SidecarProcess, startSidecarProcess, stopSidecars } from './sidecar-harness.js';

export { get } from './traffic.js';

export const TD = 'spiffe://example.org';
const FRONT_UID = 65534;
const BACK_UID = 1;
const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
export const ECHO_SERVICE: grpc.ServiceDefinition = {
  Say: {
    path: '/test.Echo/Say',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw.serialize,
    requestDeserialize: raw.deserialize,
    responseSerialize: raw.serialize,
    responseDeserialize: raw.deserialize,
  },
  Count: {
    path: '/test.Echo/Count',
    requestStream: false,
    responseStream: true,
    requestSerialize: raw.serialize,
    requestDeserialize: raw.deserialize,
    responseSerialize: raw.serialize,
    responseDeserialize: raw.deserialize,
  },
};

let root: { dir: string; cleanup(): void };
let server: ServerProcess;
let agent: AgentProcess;
const sidecars: SidecarProcess[] = [];
const closers: Array<() => unknown> = [];

// Live bindings, set by the hooks useProxyMesh registers in the importing test file.
/** The apps' ports (app, tcp, h2, grpc), the sidecars' listeners (inHttp, outHttp, ...) and admin ports. */
export const ports: Record<string, number> = {};
/** The backend sidecar's policy file: tests rewrite it and must restore allowPolicy() after. */
export let policyPath: string;
export let backLogs = () => '';
export let frontLogs = () => '';

/** The policy the mesh starts with (frontend allowed, /admin/* denied on the HTTP app), plus `extra` policies. */
export function allowPolicy(extra = ''): string {
  return `policies:
  - name: frontend-only
    action: ALLOW
    rules:
      - from: { principals: ["${TD}/frontend-proxy"] }
  - name: no-admin
    action: DENY
    rules:
      # Scoped to the HTTP app's port: a DENY with paths would otherwise also deny opaque TCP.
      - to: { ports: [${ports.app}], paths: ["/admin/*"] }
${extra}`;
}

/** Starts the mesh before the file's tests and stops it after. Call at the top of a test file. */
export function useProxyMesh(): void {
  beforeAll(startMesh, 120_000);
  afterAll(stopMesh);
}

async function startMesh(): Promise<void> {
  root = makeSharedDir('sigil-proxy-e2e-');
  // The SVIDs here live 8 s so rotation shows within the test: below the default floor of 1 minute.
  const serverConfig = path.join(root.dir, 'server.yaml');
  writeFileSync(serverConfig, 'trust_domain: example.org\nmin_svid_ttl: 1s\n');
  server = await startServerProcess({ dataDir: path.join(root.dir, 'server'), configFile: serverConfig });
  agent = await startAgentWithEntries(
    server,
    root.dir,
    [
      ['frontend-proxy', FRONT_UID],
      ['backend-proxy', BACK_UID],
    ],
    { x509SvidTtl: '8s' },
  );

  // The backend apps: HTTP echo of what the sidecar tells it, TCP echo, and an h2c server.
  const app = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        method: req.method,
        path: req.url,
        peer: req.headers['x-sigil-peer-id'],
        xfcc: req.headers['x-forwarded-client-cert'],
        raw: req.rawHeaders,
      }),
    );
  });
  const tcp = net.createServer((socket) => socket.pipe(socket));
  const h2 = http2.createServer((_req, res) => res.end('h2 ok'));
  for (const [name, srv] of [
    ['app', app],
    ['tcp', tcp],
    ['h2', h2],
  ] as const) {
    await new Promise<void>((resolve) => (srv as net.Server).listen(0, '127.0.0.1', () => resolve()));
    ports[name] = ((srv as net.Server).address() as net.AddressInfo).port;
    closers.push(() => new Promise((resolve) => (srv as net.Server).close(resolve)));
  }
  // A gRPC app (unary and server streaming), raw bytes so no proto is needed.
  const grpcServer = new grpc.Server();
  grpcServer.addService(ECHO_SERVICE, {
    Say: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) =>
      done(null, Buffer.concat([Buffer.from('echo:'), call.request])),
    Count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      for (let i = 1; i <= 3; i++) call.write(Buffer.from(String(i)));
      call.end();
    },
  });
  ports.grpc = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  closers.push(() => new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve())));
  for (const name of [
    'inHttp',
    'inTcp',
    'inH2',
    'inGrpc',
    'outHttp',
    'outTcp',
    'outH2',
    'outGrpc',
    'backAdmin',
    'frontAdmin',
  ])
    ports[name] = await freePort();

  policyPath = path.join(root.dir, 'policy.yaml');
  writeFileSync(policyPath, allowPolicy());
  chmodSync(policyPath, 0o644);
  const backend = await startSidecarProcess(
    BACK_UID,
    root.dir,
    'backend',
    `workload_api: unix://${agent.socketPath}
admin: 127.0.0.1:${ports.backAdmin}
policy_file: ${policyPath}
inbound:
  - { name: api, listen: "127.0.0.1:${ports.inHttp}", protocol: http, app: "127.0.0.1:${ports.app}", mode: strict }
  - { name: echo, listen: "127.0.0.1:${ports.inTcp}", protocol: tcp, app: "127.0.0.1:${ports.tcp}", mode: strict }
  - { name: grpc, listen: "127.0.0.1:${ports.inH2}", protocol: http2, app: "127.0.0.1:${ports.h2}", mode: strict }
  - { name: grpcapp, listen: "127.0.0.1:${ports.inGrpc}", protocol: http2, app: "127.0.0.1:${ports.grpc}", mode: strict }
`,
  );
  sidecars.push(backend);
  backLogs = backend.logs;
  const frontend = await startSidecarProcess(
    FRONT_UID,
    root.dir,
    'frontend',
    `workload_api: unix://${agent.socketPath}
admin: 127.0.0.1:${ports.frontAdmin}
outbound:
  - { name: api, listen: "127.0.0.1:${ports.outHttp}", protocol: http, upstream: "127.0.0.1:${ports.inHttp}", server_ids: ["${TD}/backend-proxy"] }
  - { name: echo, listen: "127.0.0.1:${ports.outTcp}", protocol: tcp, upstream: "127.0.0.1:${ports.inTcp}", server_ids: ["${TD}/backend-proxy"] }
  - { name: grpc, listen: "127.0.0.1:${ports.outH2}", protocol: http2, upstream: "127.0.0.1:${ports.inH2}", server_ids: ["${TD}/backend-proxy"] }
  - { name: grpcapp, listen: "127.0.0.1:${ports.outGrpc}", protocol: http2, upstream: "127.0.0.1:${ports.inGrpc}", server_ids: ["${TD}/backend-proxy"] }
  - { name: wrong, listen: "127.0.0.1:0", protocol: http, upstream: "127.0.0.1:${ports.inHttp}", server_ids: ["${TD}/someone-else"] }
`,
  );
  sidecars.push(frontend);
  frontLogs = frontend.logs;
}

async function stopMesh(): Promise<void> {
  await stopSidecars(sidecars);
  for (const close of closers) await close();
  await agent?.stop();
  await server?.stop();
  root?.cleanup();
}
