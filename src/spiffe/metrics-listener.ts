// A plain-HTTP listener that serves only `GET /metrics`, for Prometheus to scrape (metrics_bind of
// the server and the agent). Everything else is 404: no health, no admin, nothing that needs
// authentication, so the port can be opened to a monitoring network. It knows nothing of
// prom-client; the caller renders the exposition. Bounded like every listener we run: a connection
// cap, header and request deadlines, small headers, and no request body read.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { capConnections } from './connection-cap.js';
import type { HostPort } from './host-port.js';
import { tcpListenError } from './tcp-listen.js';

/** 64: a handful of Prometheus replicas and a curl or two; a scrape holds one connection. */
export const METRICS_MAX_CONNECTIONS = 64;
/** 10 s: a scraper sends its request head at once; a slower one is a stalled or hostile client. */
const HEADER_TIMEOUT_MS = 10_000;
/** 30 s: Prometheus' default scrape timeout is 10 s, so a longer request is nobody we serve. */
const REQUEST_TIMEOUT_MS = 30_000;
/** 15 s: scrapes come every 15-60 s; a keep-alive connection idle longer is closed. */
const KEEP_ALIVE_TIMEOUT_MS = 15_000;
/** 8 KiB: a scrape's head is a few hundred bytes; node's default allows 16 KiB. */
const MAX_HEADER_BYTES = 8 * 1024;

export interface MetricsExposition {
  readonly contentType: string;
  readonly body: string;
}

export interface MetricsListenerOptions {
  readonly listen: HostPort;
  /** The config key the address came from, named in bind errors (e.g. "metrics_bind"). */
  readonly field: string;
  /** The command-line flag that overrides `field`, named in bind errors (e.g. "--metrics-bind"). */
  readonly flag?: string;
  /** Renders the exposition at each scrape. */
  render(): Promise<MetricsExposition>;
  /** A render that failed (answered 500) or a failed accept; the caller logs it. */
  onError(err: unknown): void;
}

export interface MetricsListener {
  readonly address: HostPort;
  close(): Promise<void>;
}

export async function startMetricsListener(options: MetricsListenerOptions): Promise<MetricsListener> {
  const server = http.createServer({
    headersTimeout: HEADER_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    maxHeaderSize: MAX_HEADER_BYTES,
  });
  capConnections(server, METRICS_MAX_CONNECTIONS, {
    // Past the cap the connection is closed unread: a scraper retries at its next interval.
    onDrop: () => {},
    onAcceptError: (err) => options.onError(err),
  });
  server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
    const path = (request.url ?? '').split('?')[0];
    // A body is never read: discard whatever came so the connection can be reused.
    request.resume();
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('not found; metrics are at GET /metrics\n');
      return;
    }
    options.render().then(
      ({ contentType, body }) => {
        response.writeHead(200, { 'content-type': contentType });
        response.end(request.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        options.onError(err);
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        response.end('rendering metrics failed; see the log\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    const target = { setting: options.field, flag: options.flag, ...options.listen };
    const onError = (err: NodeJS.ErrnoException) => reject(tcpListenError(target, err) ?? err);
    server.once('error', onError);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
