// Two applications, each with a Sigil sidecar, and one agent: real processes on loopback. The
// frontend's sidecar (uid 65534) and the backend's (uid 1) take their identities from the Workload
// API; traffic between them is mTLS, authorized by a policy file that reloads without a restart.
import { chmodSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  freePort,
  makeSharedDir,
  startAgentProcess,
  waitFor,
} from '../support/agent-harness.js';
import { runCommand, type ServerProcess, startServerProcess } from '../support/harness.js';
import { type SidecarProcess, startSidecarProcess } from '../support/sidecar-harness.js';

const TD = 'spiffe://example.org';
const FRONT_UID = 65534;
const BACK_UID = 1;
const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const ECHO_SERVICE: grpc.ServiceDefinition = {
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
const ports: Record<string, number> = {};
let policyPath: string;
let backLogs = () => '';
let frontLogs = () => '';

function allowPolicy(extra = ''): string {
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

function get(
  port: number,
  urlPath: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, headers }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  root = makeSharedDir('sigil-proxy-e2e-');
  // The SVIDs here live 8 s so rotation shows within the test: below the default floor of 1 minute.
  const serverConfig = path.join(root.dir, 'server.yaml');
  writeFileSync(serverConfig, 'trust_domain: example.org\nmin_svid_ttl: 1s\n');
  server = await startServerProcess({ dataDir: path.join(root.dir, 'server'), configFile: serverConfig });
  const bundlePath = path.join(root.dir, 'bundle.pem');
  writeFileSync(bundlePath, (await server.cli('bundle', 'show', '--format', 'pem')).stdout);
  const token = JSON.parse(
    (await server.cli('token', 'generate', '--output', 'json', '--spiffe-id', `${TD}/node1`)).stdout,
  ).token;
  for (const [id, uid] of [
    ['frontend-proxy', FRONT_UID],
    ['backend-proxy', BACK_UID],
  ] as const) {
    const res = await server.cli(
      'entry',
      'create',
      '--spiffe-id',
      `${TD}/${id}`,
      '--parent-id',
      `${TD}/node1`,
      '--selector',
      `unix:uid:${uid}`,
      '--x509-svid-ttl',
      '8s',
    );
    expect(res.code, res.stderr).toBe(0);
  }
  agent = await startAgentProcess(server, {
    root: path.join(root.dir, 'agent'),
    joinToken: token,
    trustBundlePath: bundlePath,
  });

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
}, 120_000);

afterAll(async () => {
  for (const sidecar of sidecars) if ((await sidecar.stop()) === null) sidecar.child.kill('SIGKILL');
  for (const close of closers) await close();
  await agent?.stop();
  await server?.stop();
  root?.cleanup();
});

describe('sigil-proxy sidecars', () => {
  it('carries HTTP/1.1 over mTLS and tells the app who called, stripping forged identity headers', async () => {
    const res = await get(ports.outHttp!, '/hello', {
      'x-sigil-peer-id': `${TD}/forged`,
      'X-Custom-Case': 'kept',
    });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.peer).toBe(`${TD}/frontend-proxy`);
    expect(body.xfcc).toMatch(
      new RegExp(`^By=${TD}/backend-proxy;Hash=[0-9a-f]{64};URI=${TD}/frontend-proxy$`),
    );
    expect(body.raw).toContain('X-Custom-Case');
    expect(backLogs()).toMatch(/strip/i);
  });

  it('carries opaque TCP and HTTP/2', async () => {
    const echoed = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(ports.outTcp!, '127.0.0.1', () => socket.write('ping over mTLS'));
      let data = '';
      socket.on('data', (c) => {
        data += c;
        if (data === 'ping over mTLS') socket.end();
      });
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(echoed).toBe('ping over mTLS');
    const h2 = http2.connect(`http://127.0.0.1:${ports.outH2}`);
    const body = await new Promise<string>((resolve, reject) => {
      const stream = h2.request({ ':path': '/' });
      let data = '';
      stream.on('data', (c) => {
        data += c;
      });
      stream.on('end', () => resolve(data));
      stream.on('error', reject);
    });
    h2.close();
    expect(body).toBe('h2 ok');
  });

  it('carries gRPC, unary and streaming, through the HTTP/2 pipe', async () => {
    const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
    const client = new Client(`127.0.0.1:${ports.outGrpc}`, grpc.credentials.createInsecure()) as unknown as {
      Say(req: Buffer, cb: (err: grpc.ServiceError | null, res: Buffer) => void): void;
      Count(req: Buffer): grpc.ClientReadableStream<Buffer>;
      close(): void;
    };
    const said = await new Promise<string>((resolve, reject) =>
      client.Say(Buffer.from('hi'), (err, res) => (err ? reject(err) : resolve(res.toString()))),
    );
    expect(said).toBe('echo:hi');
    const counted = await new Promise<string[]>((resolve, reject) => {
      const items: string[] = [];
      const stream = client.Count(Buffer.alloc(0));
      stream.on('data', (b: Buffer) => items.push(b.toString()));
      stream.on('end', () => resolve(items));
      stream.on('error', reject);
    });
    expect(counted).toEqual(['1', '2', '3']);
    client.close();
  });

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

  it('fails hard when the upstream presents an unexpected SPIFFE ID', async () => {
    const started = JSON.parse(
      frontLogs()
        .split('\n')
        .find((l) => l.includes('"msg":"Sigil proxy started"'))!,
    );
    const res = await get(started.listeners.wrong, '/hello');
    expect(res.status).toBe(502);
    await waitFor(
      () =>
        /"destination_id":"spiffe:\/\/example.org\/backend-proxy"[^\n]*"msg":"Upstream identity refused"/.test(
          frontLogs(),
        ),
      10_000,
      () => `no refusal naming both IDs:\n${frontLogs()}`,
    );
    expect(frontLogs()).toContain(`${TD}/someone-else`);
  });

  it('refuses callers without an SVID (openssl s_client, plain curl)', async () => {
    const ssl = await runCommand('bash', [
      '-c',
      `echo | timeout 10 openssl s_client -connect 127.0.0.1:${ports.inHttp} 2>&1; true`,
    ]);
    expect(ssl.stdout).toMatch(/URI:spiffe:\/\/example.org\/backend-proxy|backend-proxy|CONNECTED/);
    const curl = await runCommand('curl', [
      '-sk',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `https://127.0.0.1:${ports.inHttp}/hello`,
    ]);
    expect(curl.stdout).not.toBe('200');
    const plain = await runCommand('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://127.0.0.1:${ports.inHttp}/hello`,
    ]);
    expect(plain.stdout).not.toBe('200');
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

  it('keeps every request working while SVIDs rotate (8s TTL)', async () => {
    let ok = 0;
    const failures: string[] = [];
    const deadline = Date.now() + 12_000;
    while (Date.now() < deadline) {
      const res = await get(ports.outHttp!, '/hello').catch((err: Error) => ({
        status: 0,
        body: err.message,
      }));
      if (res.status === 200) ok++;
      else failures.push(`${res.status} ${res.body.slice(0, 100)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(100);
    expect(backLogs()).toMatch(/"msg":"Identity rotated"/);
  }, 30_000);

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
