// `sigil-proxy route check`: "which route, rule and backend would this request take?", answered
// with the proxy's own parser, selection and filters (explain.ts). Exit codes: 0 a route matches
// (redirects included) or the service has no routes at all; 1 no route matches (the proxy answers
// 404); 2 bad flags or a file that does not load. Only this file prints.
import { parseAllDocuments } from 'yaml';
import { quote, SigilError } from '../../spiffe/errors.js';
import {
  type CommandIo,
  cliJson,
  outputFormat,
  parseFlags,
  readCommandFile,
  required,
  runCommandGroup,
  usage,
} from '../command-flags.js';
import { loadProxyConfig } from '../config.js';
import { type Explanation, explainGrpc, explainHttp } from './explain.js';
import type { RouteTable } from './model.js';
import { parseRouteFile } from './parse.js';

export type RouteCliIo = CommandIo;

const EXIT = { ok: 0, noRoute: 1 } as const;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const METHOD = /^[A-Z]+$/;
const GRPC_CALL = /^\/?([A-Za-z_][A-Za-z_0-9.]*)\/([A-Za-z_][A-Za-z_0-9]*)$/;

const GROUP_HELP = `Usage: sigil-proxy route <command> [flags]

Commands:
  check   Print the route, rule, filters and backends a request would take.

Run "sigil-proxy route check --help" for its flags.
`;

const CHECK_HELP = `Usage: sigil-proxy route check --config FILE --path /x [flags]

Shows what an outbound listener would do with one request: the route and rule it takes, the
condition that matched, the filters that apply (rewritten path and host, header changes, redirect
Location), each backend with its weight and share, and the mirrors.
Exit status: 0 a route matches (or the service has no routes), 1 no route matches (404),
2 usage or config error.

Flags:
  --config FILE          a proxy config with routes_file (and its services), or a routes file
                         alone (its services are then every name it mentions)
  --service S            the service the listener sends to (the routes' parent); required when
                         the file routes several
  --method M             HTTP method (default GET)
  --path /x[?query]      the request target, as sent
  -H, --header 'N: V'    a request header (repeatable), e.g. -H 'x-canary: 1' or -H 'host: web'
  --grpc SVC/METHOD      check a gRPC call (GRPCRoute) instead, e.g. helloworld.Greeter/SayHello
  --output text|json     default: text
  -h, --help             show this help
`;

export function routeCommand(args: readonly string[], io: RouteCliIo): Promise<number> {
  return runCommandGroup('route', { check: checkCommand }, GROUP_HELP, args, io);
}

async function checkCommand(args: readonly string[], io: RouteCliIo): Promise<number> {
  const flags = parseFlags(args, {
    config: { type: 'string' },
    service: { type: 'string' },
    method: { type: 'string' },
    path: { type: 'string' },
    header: { type: 'string', short: 'H', multiple: true },
    grpc: { type: 'string' },
    output: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  const { values } = flags;
  if (values.help) {
    io.stdout.write(CHECK_HELP);
    return EXIT.ok;
  }
  if (flags.positionals.length > 0) throw usage(`unexpected argument ${quote(flags.positionals[0])}`);
  const output = outputFormat(values.output);
  const configFile = required(values.config, '--config FILE');
  const headers = (values.header ?? []).flatMap(parseHeader);
  const method = values.method ?? 'GET';
  if (!METHOD.test(method))
    throw usage(`--method: must be an uppercase HTTP method such as GET (got ${quote(method)})`);
  let grpcCall: RegExpExecArray | null = null;
  if (values.grpc !== undefined) {
    if (values.path !== undefined || values.method !== undefined)
      throw usage('--grpc checks a gRPC call: leave out --path and --method');
    grpcCall = GRPC_CALL.exec(values.grpc);
    if (grpcCall === null)
      throw usage(
        `--grpc: must be SERVICE/METHOD, e.g. helloworld.Greeter/SayHello (got ${quote(values.grpc)})`,
      );
  } else if (values.path === undefined) throw usage('missing --path /x (or --grpc SERVICE/METHOD)');
  else if (!values.path.startsWith('/') && values.path !== '*')
    throw usage(`--path: must start with "/" (got ${quote(values.path)})`);

  const { table, services } = await loadTable(configFile);
  const service = pickService(table, services, values.service, grpcCall !== null);
  const explanation =
    grpcCall !== null
      ? explainGrpc(table, service, grpcCall[1]!, grpcCall[2]!, headers)
      : explainHttp(table, service, { method, target: values.path!, headers });
  io.stdout.write(output === 'json' ? cliJson(explanation) : formatExplanation(explanation));
  return explanation.status === 404 ? EXIT.noRoute : EXIT.ok;
}

function parseHeader(text: string): string[] {
  const colon = text.indexOf(':');
  const name = colon < 0 ? '' : text.slice(0, colon).trim();
  if (colon <= 0 || !HEADER_NAME.test(name))
    throw usage(`--header: must be "name: value" (got ${quote(text)})`);
  return [name, text.slice(colon + 1).trim()];
}

/**
 * The route table FILE names: a proxy config's routes_file, checked against its services, or FILE
 * itself when it is a routes file (its first object has a `kind`).
 */
async function loadTable(file: string): Promise<{ table: RouteTable; services: ReadonlySet<string> }> {
  const text = await readCommandFile(file);
  const docs = parseAllDocuments(text);
  const first = (Array.isArray(docs) ? docs : [docs])[0]?.toJS({ maxAliasCount: 100 }) as unknown;
  const isRoutes = typeof first === 'object' && first !== null && 'kind' in first;
  if (isRoutes) {
    const services = mentionedServices(docs);
    return { table: parseRouteFile(text, file, services), services };
  }
  const config = loadProxyConfig(file);
  if (config.routesFile === null)
    throw new SigilError('ERR_CONFIG_INVALID', `${file} sets no routes_file (and is not a routes file)`, {
      field: 'routes_file',
    });
  const services = new Set(config.services.map((s) => s.name));
  return {
    table: parseRouteFile(await readCommandFile(config.routesFile), config.routesFile, services),
    services,
  };
}

/** Every service a routes file names (parents, backends, mirrors): all are taken as configured. */
function mentionedServices(docs: ReturnType<typeof parseAllDocuments>): Set<string> {
  const names = new Set<string>();
  const add = (ref: unknown) => {
    const name = (ref as { name?: unknown } | null)?.name;
    if (typeof name === 'string') names.add(name);
  };
  const list = <T>(value: unknown): T[] => (Array.isArray(value) ? value : []);
  const visit = (object: unknown) => {
    const o = object as {
      kind?: unknown;
      items?: unknown;
      spec?: { parentRefs?: unknown; rules?: unknown };
    } | null;
    if (o === null || typeof o !== 'object') return;
    if (o.kind === 'List') {
      for (const item of list(o.items)) visit(item);
      return;
    }
    for (const ref of list(o.spec?.parentRefs)) add(ref);
    for (const rule of list<{ backendRefs?: unknown; filters?: unknown } | null>(o.spec?.rules)) {
      for (const ref of list(rule?.backendRefs)) add(ref);
      for (const f of list<{ requestMirror?: { backendRef?: unknown } } | null>(rule?.filters))
        add(f?.requestMirror?.backendRef);
    }
  };
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length === 0) visit(doc.toJS({ maxAliasCount: 100 }));
  }
  return names;
}

/** --service, or the one parent of the file; a usage error when that is ambiguous or unknown. */
function pickService(
  table: RouteTable,
  services: ReadonlySet<string>,
  requested: string | undefined,
  grpc: boolean,
): string {
  const parents = [...(grpc ? table.grpc : table.http).keys()].sort();
  if (requested !== undefined) {
    if (!services.has(requested))
      throw usage(
        `--service: ${quote(requested)} is not a service (services: ${[...services].sort().join(', ')})`,
      );
    return requested;
  }
  if (parents.length === 1) return parents[0]!;
  if (parents.length === 0)
    throw usage(`the file has no ${grpc ? 'GRPCRoute' : 'HTTPRoute'}: name the service with --service`);
  throw usage(`the file routes several services (${parents.join(', ')}): pick one with --service`);
}

function formatExplanation(e: Explanation): string {
  const lines: string[] = [];
  if (!e.routed) {
    lines.push(`service ${e.service} has no routes: everything goes to ${e.service}`);
    return `${lines.join('\n')}\n`;
  }
  if (e.rule === null) return `service ${e.service}: no route matches: 404\n`;
  lines.push(
    `service ${e.service}: ${e.rule.kind} ${e.rule.route}, rule ${e.rule.name} (rules[${e.rule.index}])`,
  );
  lines.push(`  matched: ${e.rule.match}`);
  if (e.redirect !== null) lines.push(`  redirect: ${e.status} ${e.redirect}`);
  if (e.rewrittenTarget !== null) lines.push(`  path rewritten to: ${e.rewrittenTarget}`);
  if (e.rewrittenHost !== null) lines.push(`  host rewritten to: ${e.rewrittenHost}`);
  for (const h of e.requestHeaders) lines.push(`  request header: ${h}`);
  for (const h of e.responseHeaders) lines.push(`  response header: ${h}`);
  if (e.redirect === null) {
    if (e.backends.length === 0) lines.push('  backends: every weight is 0: the proxy answers 500');
    else lines.push('  backends:');
    const width = Math.max(...e.backends.map((b) => b.service.length));
    for (const b of e.backends)
      lines.push(`    ${b.service.padEnd(width)}  weight ${b.weight}  ${b.sharePercent}%`);
  }
  for (const m of e.mirrors) lines.push(`  mirror: ${m.service} (${m.percent}% of matching requests)`);
  if (e.timeouts !== null) {
    const show = (ms: number | null) => (ms === null ? "service's" : ms === 0 ? 'none' : `${ms}ms`);
    lines.push(
      `  timeouts: request ${show(e.timeouts.requestMs)}, backendRequest ${show(e.timeouts.backendRequestMs)}`,
    );
  }
  if (e.retry !== null) {
    const r = e.retry;
    lines.push(
      `  retry: ${r.maxAttempts === null ? "service's attempts" : `${r.maxAttempts} tries in all`}, on ${r.onStatuses?.join(', ') ?? "service's statuses"}, backoff ${r.backoffMs === null ? "service's" : `${r.backoffMs}ms`}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
