// Stand-ins for routes/select.ts and routes/filters.ts (branch routes-core) until they are merged.
import type {
  HeaderModifier,
  HttpMatch,
  HttpRouteEntry,
  PathModifier,
  RequestRedirect,
  RouteRequest,
  UrlRewrite,
  WeightedBackend,
} from '../routes/model.js';

function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

function header(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === name) return headers[i + 1];
  return undefined;
}

function matches(match: HttpMatch, request: RouteRequest): boolean {
  const path = pathOf(request.target);
  const p = match.path;
  if (p.type === 'Exact' && path !== p.value) return false;
  if (p.type === 'PathPrefix') {
    const prefix = p.value.endsWith('/') ? p.value.slice(0, -1) : p.value;
    if (!(path === prefix || path.startsWith(`${prefix}/`) || prefix === '')) return false;
  }
  if (p.type === 'RegularExpression' && !p.regex.test(path)) return false;
  if (match.method !== null && match.method !== request.method) return false;
  for (const h of match.headers) {
    const value = header(request.headers, h.name);
    if (value === undefined) return false;
    if (h.type === 'Exact' ? value !== h.value : !h.regex.test(value)) return false;
  }
  return true;
}

export function selectHttpRoute(
  entries: readonly HttpRouteEntry[],
  request: RouteRequest,
): HttpRouteEntry | null {
  for (const entry of entries) if (matches(entry.match, request)) return entry;
  return null;
}

export function pickBackend(backends: readonly WeightedBackend[], random: () => number): string | null {
  let total = 0;
  for (const b of backends) total += b.weight;
  if (total === 0) return null;
  let point = random() * total;
  for (const b of backends) {
    if (point < b.weight) return b.service;
    point -= b.weight;
  }
  return backends[backends.length - 1]!.service;
}

export function headerValue(headers: readonly string[], lowerName: string): string | undefined {
  return header(headers, lowerName);
}

export function modifyRequestHeaders(mod: HeaderModifier, headers: readonly string[]): string[] {
  const out: string[] = [];
  const drop = new Set([...mod.remove, ...mod.set.map((p) => p.name)].map((n) => n.toLowerCase()));
  for (let i = 0; i < headers.length; i += 2)
    if (!drop.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!);
  for (const p of mod.set) out.push(p.name, p.value);
  for (const p of mod.add) out.push(p.name, p.value);
  return out;
}

export function modifyResponseHeaders(mod: HeaderModifier, rawHeaders: Buffer[]): Buffer[] {
  const flat = rawHeaders.map((b) => b.toString('latin1'));
  return modifyRequestHeaders(mod, flat).map((s) => Buffer.from(s, 'latin1'));
}

function modifyPath(modifier: PathModifier, match: HttpMatch, path: string): string {
  if (modifier.type === 'ReplaceFullPath') return modifier.value;
  const prefix = match.path.value.replace(/\/$/, '');
  const rest = path.slice(prefix.length);
  const base = modifier.value.replace(/\/$/, '');
  const out = base + rest;
  return out === '' ? '/' : out.startsWith('/') ? out : `/${out}`;
}

export function rewriteTarget(
  rule: { rewrite: UrlRewrite | null },
  match: HttpMatch,
  target: string,
): string {
  const rewrite = rule.rewrite;
  if (rewrite === null || rewrite.path === null) return target;
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  return modifyPath(rewrite.path, match, path) + (q === -1 ? '' : target.slice(q));
}

export function rewriteHost(headers: readonly string[], hostname: string): string[] {
  const out = headers.slice();
  for (let i = 0; i < out.length; i += 2) if (out[i]!.toLowerCase() === 'host') out[i + 1] = hostname;
  return out;
}

export function redirectResponse(
  redirect: RequestRedirect,
  match: HttpMatch,
  target: string,
  hostHeader: string | undefined,
  listenerScheme: 'http' | 'https',
): { status: number; location: string } {
  const request = { target };
  const host = hostHeader ?? 'localhost';
  const [hostname, hostPort] = host.split(':');
  const scheme = redirect.scheme ?? listenerScheme;
  const port = redirect.port ?? (hostPort === undefined ? null : Number(hostPort));
  const path =
    redirect.path === null
      ? pathOf(request.target)
      : modifyPath(redirect.path, match, pathOf(request.target));
  const q = request.target.indexOf('?');
  const portText =
    port === null || (scheme === 'http' && port === 80) || (scheme === 'https' && port === 443)
      ? ''
      : `:${port}`;
  return {
    status: redirect.statusCode,
    location: `${scheme}://${redirect.hostname ?? hostname}${portText}${path}${q === -1 ? '' : request.target.slice(q)}`,
  };
}
