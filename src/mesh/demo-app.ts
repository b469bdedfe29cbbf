// The mesh's demo services: a tiny HTTP app that answers every request with JSON saying who it is,
// what was asked, and the caller's SPIFFE ID as its sidecar verified it (`x-sigil-peer-id`, which
// the sidecar always sets or strips, so the app can trust it). It never talks TLS or the Workload
// API itself: that is the sidecar's job, which is the point of the demo.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoAnswer {
  readonly service: string;
  readonly method: string;
  readonly path: string;
  /** The caller's SPIFFE ID from the sidecar; null for a request that did not come through one. */
  readonly peer_id: string | null;
}

/** Starts the app on host:port (0 for any); resolves once it listens. */
export async function startDemoApp(options: {
  name: string;
  host: string;
  port: number;
}): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const peer = req.headers['x-sigil-peer-id'];
    const answer: DemoAnswer = {
      service: options.name,
      method: req.method ?? '',
      path: req.url ?? '',
      peer_id: typeof peer === 'string' ? peer : null,
    };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(answer)}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
