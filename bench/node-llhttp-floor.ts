// A second Node floor: HTTP/1.1 relayed by driving llhttp directly (Node's own native binding, the
// parser node:http runs) instead of node:http's request/response objects and undici's Pool; see
// llhttp-relay/. Same question as node-floor-proxy.ts (how cheap can a Node sidecar be at all), same
// mTLS from the Workload API identity, nothing else: no policy, metrics, identity headers, logs, ID
// checks or timeouts. TCP and HTTP/2 listeners are plain TLS pipes, as in the first floor. Run it in
// Sigil's place (then "Sigil" in the tables is this relay and "floor" the node:http one):
//   npm run bench:proxy -- --only h1 --sigil-proxy dist/bench/node-llhttp-floor.js
// It reads the same config file as `sigil-proxy run --config FILE` (listeners only) and prints the
// same start line the harness waits for.
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, connect as netConnect } from 'node:net';
import { parse } from 'yaml';
import { ProxyIdentity } from '../src/proxy/identity.js';
import { X509Source } from '../src/sdk/index.js';
import { startInboundRelay, startOutboundRelay } from './llhttp-relay/listeners.js';
import { hostPort, mtlsClient, mtlsServer, pipe } from './node-floor-sockets.js';

interface ListenerConfig {
  readonly listen: string;
  readonly protocol: 'http' | 'tcp' | 'http2';
  readonly upstream?: string;
  readonly app?: string;
}

const config = parse(readFileSync(process.argv[process.argv.indexOf('--config') + 1]!, 'utf8')) as {
  workload_api: string;
  outbound?: ListenerConfig[];
  inbound?: ListenerConfig[];
};
/**
 * LLHTTP_RELAY_CONSUME=1: parsers read the sockets' native streams themselves, as node:http's server
 * does (llhttp-relay/native-parser.ts), instead of 'data' events; both are measured.
 */
const consume = process.env.LLHTTP_RELAY_CONSUME === '1';
const source = await X509Source.create({ address: config.workload_api });
const identity = new ProxyIdentity(source);

for (const listener of config.outbound ?? []) {
  const listen = hostPort(listener.listen);
  const target = hostPort(listener.upstream!);
  if (listener.protocol === 'http') await startOutboundRelay({ listen, target, identity, consume });
  else
    createNetServer({ noDelay: true }, (app) => pipe(app, mtlsClient(target, identity))).listen(
      listen.port,
      listen.host,
    );
}

for (const listener of config.inbound ?? []) {
  const listen = hostPort(listener.listen);
  const target = hostPort(listener.app!);
  if (listener.protocol === 'http') await startInboundRelay({ listen, target, identity, consume });
  else {
    createNetServer({ noDelay: true }, (raw) =>
      pipe(mtlsServer(raw, identity), netConnect({ host: target.host, port: target.port, noDelay: true })),
    ).listen(listen.port, listen.host);
  }
}

console.log(JSON.stringify({ msg: 'Sigil proxy started', floor: 'llhttp', consume }));
// A clean exit on the harness's SIGTERM, so that --cpu-prof writes its profile.
process.once('SIGTERM', () => process.exit(0));
