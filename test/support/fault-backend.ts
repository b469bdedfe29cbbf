// An HTTP app that fails on command, for the sidecar resilience tests: it answers a share of requests
// with an error status (spread evenly over its own request count, so runs are repeatable), adds
// latency, hangs, or calls another URL (the middle service of a chain, forwarding the deadline and
// attempt headers as a well-behaved app would). It records every request it is given, so tests
// count what reached the app rather than what the proxy says it sent.
import http from 'node:http';
import type net from 'node:net';

export const ATTEMPT_HEADER = 'x-sigil-attempt';
export const DEADLINE_HEADER = 'x-sigil-deadline';
export const SIGIL_ERROR = 'x-sigil-error';
/** Trace context an app forwards on the calls it makes for a request (W3C and B3 single). */
const TRACE_HEADERS = ['traceparent', 'tracestate', 'b3'];

/** How the app behaves; `set()` changes it between (or during) runs. */
export interface FaultMode {
  /** Share of requests (0..1) answered with `failStatus`; spread evenly, never two in a row below 0.5. Default 0. */
  readonly failShare?: number;
  /** Fail exactly the requests that are a first try: no `x-sigil-attempt`, or `1`. Default false. */
  readonly failFirstTry?: boolean;
  /** Default 503. */
  readonly failStatus?: number;
  /** A `Retry-After` value sent with failures, when set. */
  readonly retryAfter?: string;
  /** Added before answering, in milliseconds. Default 0. */
  readonly latencyMs?: number;
  /** Never answer (until the test resets the mode or closes the app). Default false. */
  readonly hang?: boolean;
  /**
   * Serve each request by calling `http://127.0.0.1:<port><same path>` (the app's own outbound
   * sidecar), forwarding `x-sigil-deadline`, `x-sigil-attempt` and the trace context, after `delayMs`; answer with the
   * status it got. What it got is recorded in `forwarded`.
   */
  readonly forwardTo?: { readonly port: number; readonly delayMs?: number };
}

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  /** `x-sigil-attempt` as received, or undefined. */
  readonly attempt: string | undefined;
  /** `x-sigil-deadline` as received (epoch ms), or undefined. */
  readonly deadlineMs: number | undefined;
  readonly idempotencyKey: string | undefined;
  /** Bytes of request body read. */
  readonly bodyBytes: number;
  /** Every header as node:http parsed it (names lowercased). */
  readonly headers: http.IncomingHttpHeaders;
  /** Wall clock when the request head arrived. */
  readonly atMs: number;
  /** What the app answered (0 while hanging). */
  status: number;
}

export interface ForwardResult {
  readonly status: number;
  readonly sigilError: string | undefined;
  readonly atMs: number;
}

export interface FaultBackend {
  readonly name: string;
  readonly port: number;
  readonly received: readonly ReceivedRequest[];
  readonly forwarded: readonly ForwardResult[];
  /** Replaces the mode (unset keys fall back to the defaults); hanging requests stay hung. */
  set(mode: FaultMode): void;
  /** Forgets recorded requests and restarts the failure spread; the mode stays. */
  clear(): void;
  /** How many requests arrived, optionally only those matching `filter`. */
  count(filter?: (r: ReceivedRequest) => boolean): number;
  close(): Promise<void>;
}

/** Starts a fault backend on 127.0.0.1 (any port), answering 200 `{"endpoint": name, ...}` by default. */
export async function startFaultBackend(name: string, initial: FaultMode = {}): Promise<FaultBackend> {
  let mode: FaultMode = initial;
  let seen = 0;
  const received: ReceivedRequest[] = [];
  const forwarded: ForwardResult[] = [];
  const hung = new Set<http.ServerResponse>();
  const sockets = new Set<net.Socket>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  // Request n fails when the running total of failures owed, floor((n+1)·share), steps up: an even
  // spread, so a retry after a failure meets a success when the share is below one half.
  const shouldFail = (req: ReceivedRequest): boolean => {
    if (mode.failFirstTry) return req.attempt === undefined || req.attempt === '1';
    const share = mode.failShare ?? 0;
    const n = seen++;
    return Math.floor((n + 1) * share) > Math.floor(n * share);
  };

  const server = http.createServer((req, res) => {
    const started = Date.now();
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length;
    });
    req.on('end', () => {
      const header = (h: string) => {
        const v = req.headers[h];
        return Array.isArray(v) ? v.at(-1) : v;
      };
      const deadline = header(DEADLINE_HEADER);
      const record: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        attempt: header(ATTEMPT_HEADER),
        deadlineMs: deadline === undefined ? undefined : Number(deadline),
        idempotencyKey: header('idempotency-key'),
        bodyBytes,
        headers: req.headers,
        atMs: started,
        status: 0,
      };
      received.push(record);
      const answer = (status: number, extra: Record<string, string> = {}) => {
        record.status = status;
        res.writeHead(status, { 'content-type': 'application/json', ...extra });
        res.end(JSON.stringify({ endpoint: name, attempt: record.attempt ?? null, status }));
      };
      if (mode.hang) {
        hung.add(res);
        res.on('close', () => hung.delete(res));
        return;
      }
      const failing = shouldFail(record);
      const reply = () => {
        if (mode.forwardTo) return forward(req, mode.forwardTo, answer);
        if (!failing) return answer(200);
        answer(
          mode.failStatus ?? 503,
          mode.retryAfter === undefined ? {} : { 'retry-after': mode.retryAfter },
        );
      };
      const latency = mode.latencyMs ?? 0;
      if (latency > 0) setTimeout(reply, latency);
      else reply();
    });
  });

  const forward = (
    req: http.IncomingMessage,
    to: { readonly port: number; readonly delayMs?: number },
    answer: (status: number) => void,
  ) => {
    const headers: Record<string, string> = {};
    for (const h of [DEADLINE_HEADER, ATTEMPT_HEADER, ...TRACE_HEADERS]) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    setTimeout(() => {
      const out = http.request(
        { host: '127.0.0.1', port: to.port, path: req.url, method: req.method, headers, agent },
        (res) => {
          res.resume();
          res.on('end', () => {
            const sigilError = res.headers[SIGIL_ERROR];
            forwarded.push({
              status: res.statusCode ?? 0,
              sigilError: typeof sigilError === 'string' ? sigilError : undefined,
              atMs: Date.now(),
            });
            answer(res.statusCode ?? 502);
          });
        },
      );
      out.on('error', () => {
        forwarded.push({ status: 0, sigilError: undefined, atMs: Date.now() });
        answer(502);
      });
      out.end();
    }, to.delayMs ?? 0);
  };

  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    name,
    port: (server.address() as net.AddressInfo).port,
    received,
    forwarded,
    set(next) {
      mode = next;
      seen = 0;
    },
    clear() {
      received.length = 0;
      forwarded.length = 0;
      seen = 0;
    },
    count: (filter) => (filter ? received.filter(filter).length : received.length),
    async close() {
      agent.destroy();
      for (const res of hung) res.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
