// Client side of the resilience tests: single requests and steady open-loop load at a rate through
// a sidecar's outbound listener, and reads of its admin port (Prometheus text, /config). Load is
// open-loop (requests start on schedule, not when the previous one ends), so a slow or failing
// upstream cannot quietly lower the rate the test claims to have offered.
import http from 'node:http';

export interface Outcome {
  /** 0 when the connection failed. */
  readonly status: number;
  /** `x-sigil-error`: set only on responses the proxy made itself. */
  readonly sigilError: string | undefined;
  /** The answering fault backend's name, when the app answered. */
  readonly endpoint: string | undefined;
  readonly latencyMs: number;
}

export interface RequestSpec {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string>;
  /** Sent with a Content-Length. */
  readonly body?: Buffer;
}

/** One request to 127.0.0.1:`port`. */
export function send(port: number, spec: RequestSpec = {}, agent?: http.Agent): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const headers: Record<string, string> = { ...spec.headers };
    if (spec.body) headers['content-length'] = String(spec.body.length);
    const req = http.request(
      { host: '127.0.0.1', port, path: spec.path ?? '/', method: spec.method ?? 'GET', headers, agent },
      (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => {
          let endpoint: string | undefined;
          try {
            endpoint = (JSON.parse(body) as { endpoint?: string }).endpoint;
          } catch {
            // Not the fault backend's JSON: the proxy answered, and sigilError says so.
          }
          const sigilError = res.headers['x-sigil-error'];
          resolve({
            status: res.statusCode ?? 0,
            sigilError: typeof sigilError === 'string' ? sigilError : undefined,
            endpoint,
            latencyMs: Date.now() - started,
          });
        });
      },
    );
    req.on('error', () =>
      resolve({ status: 0, sigilError: undefined, endpoint: undefined, latencyMs: Date.now() - started }),
    );
    req.end(spec.body);
  });
}

/** `rps` requests a second for `durationMs`, started on schedule; resolves with every outcome. */
export async function drive(
  port: number,
  load: { readonly rps: number; readonly durationMs: number },
  spec: RequestSpec = {},
): Promise<Outcome[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const total = Math.round((load.rps * load.durationMs) / 1000);
  const pending: Array<Promise<Outcome>> = [];
  const started = Date.now();
  while (pending.length < total) {
    const due = Math.min(total, Math.floor(((Date.now() - started) * load.rps) / 1000) + 1);
    while (pending.length < due) pending.push(send(port, spec, agent));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const outcomes = await Promise.all(pending);
  agent.destroy();
  return outcomes;
}

/** Share of `outcomes` that satisfy `is`. */
export function share(outcomes: readonly Outcome[], is: (o: Outcome) => boolean): number {
  return outcomes.length === 0 ? 0 : outcomes.filter(is).length / outcomes.length;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A plain HTTP/1.1 GET to 127.0.0.1:`port`. */
export function get(
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

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Every sample on the admin port's /metrics. */
export async function scrape(adminPort: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (const line of (await get(adminPort, '/metrics')).body.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of `name` over the samples whose labels include `labels`. */
export function total(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

export interface EndpointView {
  readonly address: string;
  readonly state: string;
  readonly ejected_until?: unknown;
}

export interface ServiceView {
  readonly name: string;
  readonly circuit: { readonly state: string; readonly open_until: unknown };
  readonly endpoints: EndpointView[];
}

/** Service `service` as the admin port's /config shows it. */
export async function serviceOf(adminPort: number, service: string): Promise<ServiceView> {
  const config = JSON.parse((await get(adminPort, '/config')).body) as { services?: ServiceView[] };
  const found = config.services?.find((s) => s.name === service);
  if (!found) throw new Error(`/config has no service ${service}: ${JSON.stringify(config.services)}`);
  return found;
}

/** The endpoints of service `service` as the admin port's /config shows them. */
export async function endpointsOf(adminPort: number, service: string): Promise<EndpointView[]> {
  return (await serviceOf(adminPort, service)).endpoints;
}
