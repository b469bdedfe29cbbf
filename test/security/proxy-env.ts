// The world the proxy attack tests run in: a server, an agent, a backend sidecar (uid 1) in front
// of an HTTP app and an h2c app that record every request target they are given, a frontend
// sidecar (uid 65534) whose outbound listeners lead there, and an attacker holding a valid SVID of
// its own. State is exported as live bindings, set by startAttackEnv.
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'vitest';
import { type AgentProcess, freePort, makeSharedDir } from '../support/agent-harness.js';
import { type ServerProcess, startServerProcess } from '../support/harness.js';
import { startAgentWithEntries } from '../support/registration.js';
import { type SidecarProcess, startSidecarProcess, stopSidecars } from '../support/sidecar-harness.js';

export const TD = 'spiffe://example.org';
const FRONT_UID = 65534;
export const BACK_UID = 1;
/** The short limits the backend and frontend sidecars run with, so attacks end within seconds. */
const LIMITS = `limits:
  handshake_timeout: 2s
  header_timeout: 1s
  request_timeout: 2s
  idle_timeout: 2s
  stream_idle_timeout: 2s
  tcp_idle_timeout: 2s
`;

export let root: { dir: string; cleanup(): void };
let server: ServerProcess;
export let agent: AgentProcess;
export let backend: SidecarProcess;
export let frontend: SidecarProcess;
export const sidecars: SidecarProcess[] = [];
const closers: Array<() => unknown> = [];
export const ports: Record<string, number> = {};
/** Every request target the HTTP app and the h2 app were given. */
export const received: string[] = [];
export let attacker: { key: string; cert: string; keyFile: string; certFile: string };

/** Starts the server, the agent, the apps and the two sidecars; call from beforeAll. */
export async function startAttackEnv(): Promise<void> {
  root = makeSharedDir('sigil-proxy-security-');
  server = await startServerProcess({ dataDir: path.join(root.dir, 'server') });
  agent = await startAgentWithEntries(server, root.dir, [
    ['frontend-proxy', FRONT_UID],
    ['backend-proxy', BACK_UID],
  ]);
  // A workload with a valid SVID of its own, talking to the backend sidecar directly.
  const mint = await server.cli(
    'x509',
    'mint',
    '--spiffe-id',
    `${TD}/attacker`,
    '--write',
    path.join(root.dir, 'attacker'),
  );
  expect(mint.code, mint.stderr).toBe(0);
  const keyFile = path.join(root.dir, 'attacker', 'svid.key');
  const certFile = path.join(root.dir, 'attacker', 'svid.pem');
  attacker = { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), keyFile, certFile };

  const app = http.createServer((req, res) => {
    received.push(req.url ?? '');
    req.resume();
    req.on('end', () => res.end('app'));
  });
  app.on('upgrade', (req, socket) => {
    received.push(req.url ?? '');
    socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  });
  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    received.push(String(headers[':path']));
    stream.respond({ ':status': 200 });
    stream.end('h2 app');
  });
  const echo = net.createServer((socket) => socket.pipe(socket));
  const globApp = http.createServer((_req, res) => res.end('glob app'));
  for (const [name, srv] of [
    ['app', app],
    ['h2', h2],
    ['echo', echo],
    ['glob', globApp],
  ] as const) {
    await new Promise<void>((resolve) => (srv as net.Server).listen(0, '127.0.0.1', () => resolve()));
    ports[name] = ((srv as net.Server).address() as net.AddressInfo).port;
    closers.push(() => new Promise((resolve) => (srv as net.Server).close(resolve)));
  }
  for (const name of ['inHttp', 'inH2', 'inCapped', 'outHttp', 'outH2', 'backAdmin', 'frontAdmin']) {
    ports[name] = await freePort();
  }
  const policyPath = path.join(root.dir, 'policy.yaml');
  writeFileSync(
    policyPath,
    `policies:
  - name: deny-admin
    action: DENY
    rules:
      - to: { ports: [${ports.app}, ${ports.h2}], paths: ["/admin/*"] }
  # Logs the path every HTTP request was decided on, to compare with what the apps received.
  - name: audit-http
    action: AUDIT
    rules:
      - to: { ports: [${ports.app}, ${ports.h2}], methods: [GET, POST] }
`,
  );
  backend = await startSidecarProcess(
    BACK_UID,
    root.dir,
    'backend',
    `workload_api: unix://${agent.socketPath}
admin: 127.0.0.1:${ports.backAdmin}
policy_file: ${policyPath}
${LIMITS}inbound:
  - { name: api, listen: "127.0.0.1:${ports.inHttp}", protocol: http, app: "127.0.0.1:${ports.app}" }
  - { name: grpc, listen: "127.0.0.1:${ports.inH2}", protocol: http2, app: "127.0.0.1:${ports.h2}" }
  - name: capped
    listen: "127.0.0.1:${ports.inCapped}"
    protocol: tcp
    app: "127.0.0.1:${ports.echo}"
    limits: { max_connections: 5, tcp_idle_timeout: 1m }
`,
  );
  sidecars.push(backend);
  frontend = await startSidecarProcess(
    FRONT_UID,
    root.dir,
    'frontend',
    `workload_api: unix://${agent.socketPath}
admin: 127.0.0.1:${ports.frontAdmin}
${LIMITS}outbound:
  - { name: api, listen: "127.0.0.1:${ports.outHttp}", protocol: http, upstream: "127.0.0.1:${ports.inHttp}", server_ids: ["${TD}/backend-proxy"] }
  - { name: grpc, listen: "127.0.0.1:${ports.outH2}", protocol: http2, upstream: "127.0.0.1:${ports.inH2}", server_ids: ["${TD}/backend-proxy"] }
`,
  );
  sidecars.push(frontend);
}

/** Stops everything startAttackEnv started, and any sidecar a test added to `sidecars`. */
export async function stopAttackEnv(): Promise<void> {
  await stopSidecars(sidecars);
  for (const close of closers) await close();
  await agent?.stop();
  await server?.stop();
  root?.cleanup();
}

/** Sends raw bytes and returns everything that came back before the connection closed. */
export function exchange(
  socket: net.Socket | tls.TLSSocket,
  bytes: string,
  startEvent = 'connect',
): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    socket.on(startEvent, () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(answer));
  });
}

export const plain = (port: number, bytes: string) => exchange(net.connect(port, '127.0.0.1'), bytes);

export function asAttacker(port: number): tls.TLSSocket {
  return tls.connect({
    host: '127.0.0.1',
    port,
    key: attacker.key,
    cert: attacker.cert,
    rejectUnauthorized: false,
  });
}

export const direct = (port: number, bytes: string) => exchange(asAttacker(port), bytes, 'secureConnect');
export const request = (target: string, extra = '') =>
  `GET ${target} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n${extra}\r\n`;
export const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);

export async function metric(
  adminPort: number,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const text = await new Promise<string>((resolve, reject) =>
    http
      .get({ host: '127.0.0.1', port: adminPort, path: '/metrics' }, (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve(body));
      })
      .on('error', reject),
  );
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}
