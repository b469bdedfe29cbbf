// The Node floor: the design proxy-performance-notes.md recommends for HTTP/1.1 (a node:http front, an
// undici Pool per upstream, raw header arrays) and for TCP (a TLS pipe), with mTLS from the same
// Workload API identity, and nothing else: no policy, metrics, identity headers, logs or ID checks.
// It is not a sidecar anyone should run. It answers one question in bench:proxy's own harness, on
// the day: how close to HAProxy can this design get at all, so that Sigil's figures read as
// "the floor plus our features". Run it in Sigil's place:
//   npm run bench:proxy -- --sigil-proxy dist/bench/node-floor-proxy.js
// It reads the same config file as `sigil-proxy run --config FILE` (listeners only) and prints the
// same start line the harness waits for.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, connect as netConnect } from 'node:net';
import type { Dispatcher } from 'undici';
import { parse } from 'yaml';
import { Pool } from '../src/proxy/http-relay.js';
import { ProxyIdentity } from '../src/proxy/identity.js';
import { X509Source } from '../src/sdk/index.js';
import { hostPort, mtlsClient, mtlsServer, pipe } from './node-floor-sockets.js';

interface ListenerConfig {
  readonly listen: string;
  readonly protocol: 'http' | 'tcp' | 'http2';
  readonly upstream?: string;
  readonly app?: string;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

const config = parse(readFileSync(process.argv[process.argv.indexOf('--config') + 1]!, 'utf8')) as {
  workload_api: string;
  outbound?: ListenerConfig[];
  inbound?: ListenerConfig[];
};
const source = await X509Source.create({ address: config.workload_api });
const identity = new ProxyIdentity(source);

function endToEnd(raw: readonly (string | Buffer)[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = String(raw[i]);
    if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, String(raw[i + 1]));
  }
  return out;
}

function relay(pool: Dispatcher, req: IncomingMessage, res: ServerResponse): void {
  const hasBody =
    req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.dispatch(
    {
      path: req.url ?? '/',
      method: req.method ?? 'GET',
      headers: endToEnd(req.rawHeaders),
      body: hasBody ? req : null,
    },
    {
      onConnect() {},
      onHeaders(status, raw, _resume, statusText) {
        if (status >= 200) res.writeHead(status, statusText, endToEnd(raw));
        return true;
      },
      onData(chunk) {
        res.write(chunk);
        return true;
      },
      onComplete() {
        res.end();
      },
      onError() {
        res.destroy();
      },
    },
  );
}

for (const listener of config.outbound ?? []) {
  const listen = hostPort(listener.listen);
  const upstream = hostPort(listener.upstream!);
  if (listener.protocol === 'http') {
    const pool = new Pool(`http://${upstream.host}:${upstream.port}`, {
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connect: (_options, callback) => {
        const socket = mtlsClient(upstream, identity);
        socket.once('secureConnect', () => callback(null, socket as never));
        socket.once('error', (err) => callback(err, null));
      },
    });
    createHttpServer((req, res) => relay(pool, req, res)).listen(listen.port, listen.host);
  } else {
    createNetServer({ noDelay: true }, (app) => pipe(app, mtlsClient(upstream, identity))).listen(
      listen.port,
      listen.host,
    );
  }
}

for (const listener of config.inbound ?? []) {
  const listen = hostPort(listener.listen);
  const app = hostPort(listener.app!);
  if (listener.protocol === 'http') {
    const pool = new Pool(`http://${app.host}:${app.port}`, { pipelining: 1, keepAliveTimeout: 30_000 });
    const http = createHttpServer({ keepAliveTimeout: 60_000 }, (req, res) => relay(pool, req, res));
    createNetServer({ noDelay: true }, (raw) => {
      const socket = mtlsServer(raw, identity);
      socket.once('secure', () => http.emit('connection', socket));
      socket.on('error', () => socket.destroy());
    }).listen(listen.port, listen.host);
  } else {
    createNetServer({ noDelay: true }, (raw) =>
      pipe(mtlsServer(raw, identity), netConnect({ host: app.host, port: app.port, noDelay: true })),
    ).listen(listen.port, listen.host);
  }
}

console.log(JSON.stringify({ msg: 'Sigil proxy started', floor: true }));
// A clean exit on the harness's SIGTERM, so that --cpu-prof writes its profile.
process.once('SIGTERM', () => process.exit(0));
