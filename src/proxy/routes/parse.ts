// Turns a routes file (YAML: HTTPRoute and GRPCRoute objects, one or several documents, or a
// `kind: List`) into a frozen RouteTable. Every problem of the file is collected and reported at
// once, prefixed with the route it is in; fields outside the supported subset are refused, naming
// the field, never ignored, so a route never does less than its author believes.
import { parseAllDocuments } from 'yaml';
import { quote, SigilError } from '../../spiffe/errors.js';
import { showValue } from '../policy/match.js';
import type { GrpcRouteEntry, HttpRouteEntry, RouteTable } from './model.js';
import type { RuleContext } from './parse-filters.js';
import { grpcRules } from './parse-grpc.js';
import { httpRules } from './parse-http.js';
import { parentRefs } from './parse-refs.js';
import { deepFreeze, isMapping, type Raw, RouteChecker } from './parse-support.js';
import { orderGrpc, orderHttp, type RankedGrpc, type RankedHttp } from './precedence.js';

export const MAX_ROUTES_FILE_BYTES = 1024 * 1024;
export const MAX_ROUTE_OBJECTS = 1000;
const MAX_METADATA_ENTRIES = 256;
/** Problems listed in one error; the count says how many there were in all. */
const MAX_LISTED_PROBLEMS = 100;
const API_VERSIONS: Readonly<Record<string, readonly string[]>> = {
  HTTPRoute: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'],
  GRPCRoute: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1alpha2'],
};
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Keys `kubectl get -o yaml` writes into metadata; read (name, namespace, creationTimestamp) or ignored. */
const METADATA_KEYS = [
  'name',
  'namespace',
  'labels',
  'annotations',
  'creationTimestamp',
  'uid',
  'resourceVersion',
  'generation',
];

/**
 * Parses and compiles a routes file. `services` are the configured `services[].name`s: parents,
 * backends and mirror targets must be among them. Throws ERR_CONFIG_INVALID listing every problem.
 */
export function parseRouteFile(text: string, file: string, services: ReadonlySet<string>): RouteTable {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_ROUTES_FILE_BYTES)
    throw invalid(file, [
      `(file): is ${bytes} bytes; a routes file is at most ${MAX_ROUTES_FILE_BYTES} (1 MiB)`,
    ]);
  const check = new RouteChecker([]);
  const objects: { value: unknown; at: string }[] = [];
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, d) => {
    const where = list.length === 1 ? '(file)' : `(document ${d + 1})`;
    if (doc.errors.length > 0) {
      check.problem(where, `is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]!.replace(/:$/, '')}`);
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      check.problem(where, `cannot be read: ${(err as Error).message.split('\n')[0]}`);
      return;
    }
    if (value === null || value === undefined) return; // an empty document, e.g. after a final ---
    if (isMapping(value) && value.kind === 'List') {
      const items = value.items;
      if (!Array.isArray(items))
        check.problem(`${where} items`, 'must be a list of HTTPRoute and GRPCRoute objects');
      else for (const [i, item] of items.entries()) objects.push({ value: item, at: `${where} items[${i}]` });
    } else objects.push({ value, at: where });
  });
  if (objects.length > MAX_ROUTE_OBJECTS)
    throw invalid(file, [
      `(file): has ${objects.length} routes; a routes file holds at most ${MAX_ROUTE_OBJECTS}`,
    ]);

  const http = new Map<string, RankedHttp[]>();
  const grpc = new Map<string, RankedGrpc[]>();
  const routes: RouteTable['routes'][number][] = [];
  const seen = new Set<string>();
  for (const { value, at } of objects) {
    check.route = '';
    const route = routeObject(check, value, at, services);
    if (route === null) continue;
    if (seen.has(`${route.kind} ${route.key}`)) {
      check.problem('metadata.name', `${quote(route.key)} names another ${route.kind} in this file`);
      continue;
    }
    seen.add(`${route.kind} ${route.key}`);
    routes.push({ kind: route.kind, name: route.key, parents: route.parents });
    const rank = { createdMs: route.createdMs, key: route.key };
    for (const parent of route.parents) {
      if (route.kind === 'HTTPRoute') {
        const ranked = http.get(parent) ?? [];
        http.set(parent, ranked);
        for (const { rule, matches } of route.httpRules)
          for (const [matchIndex, match] of matches.entries())
            ranked.push({ entry: { match, rule }, route: rank, matchIndex });
      } else {
        const ranked = grpc.get(parent) ?? [];
        grpc.set(parent, ranked);
        for (const { rule, matches } of route.grpcRules)
          for (const [matchIndex, match] of matches.entries())
            ranked.push({ entry: { match, rule }, route: rank, matchIndex });
      }
    }
  }
  if (check.problems.length > 0) throw invalid(file, check.problems);
  const table: RouteTable = {
    http: new Map<string, readonly HttpRouteEntry[]>(
      [...http].map(([p, e]) => [p, deepFreeze(orderHttp(e))]),
    ),
    grpc: new Map<string, readonly GrpcRouteEntry[]>(
      [...grpc].map(([p, e]) => [p, deepFreeze(orderGrpc(e))]),
    ),
    routes: deepFreeze(routes),
  };
  return Object.freeze(table);
}

interface RouteObject {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly key: string;
  readonly createdMs: number;
  readonly parents: string[];
  readonly httpRules: ReturnType<typeof httpRules>;
  readonly grpcRules: ReturnType<typeof grpcRules>;
}

function routeObject(
  check: RouteChecker,
  value: unknown,
  at: string,
  services: ReadonlySet<string>,
): RouteObject | null {
  if (!isMapping(value)) {
    check.problem(at, `must be an HTTPRoute or GRPCRoute object (got ${showValue(value)})`);
    return null;
  }
  const kind = value.kind;
  if (kind !== 'HTTPRoute' && kind !== 'GRPCRoute') {
    check.problem(`${at} kind`, `must be HTTPRoute or GRPCRoute (got ${showValue(kind)})`);
    return null;
  }
  const meta = metadata(check, value.metadata, `${at} metadata`);
  if (meta === null) return null;
  const key = `${meta.namespace}/${meta.name}`;
  check.route = `${kind} ${key}`;
  // `status` is written by controllers (kubectl get -o yaml has it); it says nothing about routing.
  check.mapping(value, '', ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  if (!API_VERSIONS[kind]!.includes(value.apiVersion as string))
    check.problem(
      'apiVersion',
      `must be ${API_VERSIONS[kind]!.join(' or ')} for ${kind} (got ${showValue(value.apiVersion)})`,
    );
  if (value.spec === undefined) {
    check.problem('spec', 'is required (parentRefs and rules)');
    return null;
  }
  const spec: Raw =
    check.mapping(value.spec, 'spec', ['parentRefs', 'rules'], {
      hostnames: 'is not used by mesh (GAMMA) routes; match the Host header with matches[].headers',
    }) ?? {};
  const parents = parentRefs(check, spec.parentRefs, services);
  const ctx: RuleContext = { check, route: key, namespace: meta.namespace, services };
  return {
    kind,
    key,
    createdMs: meta.createdMs,
    parents,
    httpRules: kind === 'HTTPRoute' ? httpRules(ctx, spec.rules) : [],
    grpcRules: kind === 'GRPCRoute' ? grpcRules(ctx, spec.rules) : [],
  };
}

function metadata(
  check: RouteChecker,
  value: unknown,
  at: string,
): { name: string; namespace: string; createdMs: number } | null {
  const o = check.mapping(value, at, METADATA_KEYS);
  if (o === null) return null;
  const name = o.name;
  if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    check.problem(
      `${at}.name`,
      name === undefined
        ? 'is required'
        : `must be a lowercase DNS name of up to 253 characters (got ${showValue(name)})`,
    );
    return null;
  }
  let namespace = 'default';
  if (o.namespace !== undefined) {
    if (typeof o.namespace !== 'string' || o.namespace.length > 63 || !DNS_LABEL.test(o.namespace))
      check.problem(
        `${at}.namespace`,
        `must be a lowercase DNS label of up to 63 characters (got ${showValue(o.namespace)})`,
      );
    else namespace = o.namespace;
  }
  for (const field of ['labels', 'annotations']) {
    const map = o[field];
    if (map === undefined) continue;
    if (!isMapping(map) || Object.values(map).some((v) => typeof v !== 'string'))
      check.problem(`${at}.${field}`, 'must be a mapping of strings');
    else if (Object.keys(map).length > MAX_METADATA_ENTRIES)
      check.problem(`${at}.${field}`, `must have at most ${MAX_METADATA_ENTRIES} entries`);
  }
  let createdMs = Number.POSITIVE_INFINITY;
  if (o.creationTimestamp !== undefined) {
    const raw = o.creationTimestamp;
    const ms = raw instanceof Date ? raw.getTime() : typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
    if (Number.isNaN(ms))
      check.problem(
        `${at}.creationTimestamp`,
        `must be an RFC 3339 time such as 2026-01-31T12:00:00Z (got ${showValue(raw)})`,
      );
    else createdMs = ms;
  }
  return { name, namespace, createdMs };
}

function invalid(file: string, problems: readonly string[]): SigilError {
  const noun = problems.length === 1 ? 'problem' : 'problems';
  const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => `  ${p}`);
  if (problems.length > MAX_LISTED_PROBLEMS)
    listed.push(`  … and ${problems.length - MAX_LISTED_PROBLEMS} more`);
  return new SigilError(
    'ERR_CONFIG_INVALID',
    `routes file ${file} has ${problems.length} ${noun}\n${listed.join('\n')}`,
    {
      reason: 'routes',
      field: 'routes_file',
    },
  );
}
