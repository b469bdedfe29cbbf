// References from a route to services: `parentRefs` (which services' traffic the route takes, as
// GAMMA attaches mesh routes), `backendRefs` and RequestMirror's `backendRef` (where it goes).
// Every name must be a configured `services[].name`: a sidecar has no Kubernetes API to resolve
// anything else, and cross-namespace backends would need a ReferenceGrant it cannot read.
import { quote } from '../../spiffe/errors.js';
import type { WeightedBackend } from './model.js';
import { MAX_HEADER_NAME, type RouteChecker } from './parse-support.js';

/** Gateway API's maxItems for parentRefs and backendRefs. */
export const MAX_PARENT_REFS = 32;
export const MAX_BACKEND_REFS = 16;
export const MAX_WEIGHT = 1_000_000;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Checks `name` against the configured services. */
export function serviceName(
  check: RouteChecker,
  value: unknown,
  at: string,
  services: ReadonlySet<string>,
): string | null {
  const name = check.string(value, at, MAX_HEADER_NAME);
  if (name === null) return null;
  if (!services.has(name)) {
    const known = [...services].sort().join(', ') || 'none configured';
    check.problem(at, `${quote(name)} is not a configured service (services: ${known})`);
    return null;
  }
  return name;
}

/** `group` must be the core group ("" or "core"), `kind` Service; `defaultKind` is the field's default. */
function coreService(
  check: RouteChecker,
  o: Record<string, unknown>,
  at: string,
  defaultKind: string,
): boolean {
  let ok = true;
  const group = o.group ?? (defaultKind === 'Service' ? '' : 'gateway.networking.k8s.io');
  if (group !== '' && group !== 'core') {
    check.problem(`${at}.group`, `must be "" (the core group of Service) (got ${quote(group)})`);
    ok = false;
  }
  const kind = o.kind ?? defaultKind;
  if (kind !== 'Service') {
    const why =
      o.kind === undefined
        ? `defaults to ${defaultKind}; a mesh route attaches to a Service: set kind: Service and group: ""`
        : `must be Service (got ${quote(kind)}): a sidecar routes between services, not through gateways`;
    check.problem(`${at}.kind`, why);
    ok = false;
  }
  return ok;
}

function namespace(check: RouteChecker, value: unknown, at: string, routeNamespace: string | null): boolean {
  if (value === undefined) return true;
  if (typeof value !== 'string' || !DNS_LABEL.test(value) || value.length > 63) {
    check.problem(at, `must be a namespace name (got ${quote(value)})`);
    return false;
  }
  if (routeNamespace !== null && value !== routeNamespace) {
    check.problem(
      at,
      `${quote(value)} is not the route's namespace ${quote(routeNamespace)}: cross-namespace backends need a ReferenceGrant, which a sidecar cannot read`,
    );
    return false;
  }
  return true;
}

function port(check: RouteChecker, value: unknown, at: string): void {
  if (value !== undefined) check.integer(value, at, 1, 65_535);
}

/** `spec.parentRefs`: the services whose outbound traffic this route takes. At least one. */
export function parentRefs(check: RouteChecker, value: unknown, services: ReadonlySet<string>): string[] {
  const at = 'spec.parentRefs';
  if (value === undefined) {
    check.problem(
      at,
      'is required: name the Service whose traffic this route takes ({kind: Service, group: "", name: S})',
    );
    return [];
  }
  const parents: string[] = [];
  check.list(value, at, MAX_PARENT_REFS).forEach((item, i) => {
    const ref = `${at}[${i}]`;
    const o = check.mapping(item, ref, ['group', 'kind', 'name', 'namespace', 'port'], {
      sectionName: 'is not supported: a Service parent has no sections; use port to narrow by port',
    });
    if (o === null) return;
    const isService = coreService(check, o, ref, 'Gateway');
    const name = serviceName(check, o.name, `${ref}.name`, services);
    namespace(check, o.namespace, `${ref}.namespace`, null);
    port(check, o.port, `${ref}.port`);
    if (!isService || name === null) return;
    if (parents.includes(name))
      check.problem(`${ref}.name`, `${quote(name)} is already a parent of this route`);
    else parents.push(name);
  });
  if (Array.isArray(value) && value.length === 0) check.problem(at, 'must name at least one Service');
  return parents;
}

/** A rule's `backendRefs`; backendRef-level `filters` are refused (put them on the rule). */
export function backendRefs(
  check: RouteChecker,
  value: unknown,
  at: string,
  routeNamespace: string,
  services: ReadonlySet<string>,
): WeightedBackend[] {
  const out: WeightedBackend[] = [];
  check.list(value, at, MAX_BACKEND_REFS).forEach((item, i) => {
    const ref = `${at}[${i}]`;
    const o = check.mapping(item, ref, ['group', 'kind', 'name', 'namespace', 'port', 'weight'], {
      filters: 'per-backend filters are not supported; put the filters on the rule',
    });
    if (o === null) return;
    const ok = coreService(check, o, ref, 'Service');
    const name = serviceName(check, o.name, `${ref}.name`, services);
    const sameNamespace = namespace(check, o.namespace, `${ref}.namespace`, routeNamespace);
    port(check, o.port, `${ref}.port`);
    const weight = o.weight === undefined ? 1 : check.integer(o.weight, `${ref}.weight`, 0, MAX_WEIGHT);
    if (ok && sameNamespace && name !== null && weight !== null) out.push({ service: name, weight });
  });
  return out;
}

/** RequestMirror's `backendRef`: one service, no weight. */
export function mirrorRef(
  check: RouteChecker,
  value: unknown,
  at: string,
  routeNamespace: string,
  services: ReadonlySet<string>,
): string | null {
  const o = check.mapping(value, at, ['group', 'kind', 'name', 'namespace', 'port']);
  if (o === null) return null;
  const ok = coreService(check, o, at, 'Service');
  const name = serviceName(check, o.name, `${at}.name`, services);
  const sameNamespace = namespace(check, o.namespace, `${at}.namespace`, routeNamespace);
  port(check, o.port, `${at}.port`);
  return ok && sameNamespace ? name : null;
}
