// GRPCRoute `spec.rules`: method and header matches, header modifiers and weighted backends.
// RequestMirror is refused here: the per-stream HTTP/2 relay cannot copy a stream to a shadow
// without buffering it.
import { showValue } from '../policy/match.js';
import type { GrpcMatch, GrpcMethodMatch, GrpcRule, HeaderModifier } from './model.js';
import {
  filterSettings,
  headerModifier,
  MAX_FILTERS,
  REFUSED_FILTERS,
  type RuleContext,
} from './parse-filters.js';
import { compileRules } from './parse-http.js';
import { backendRefs } from './parse-refs.js';

/** GRPCRoute's maxItems for matches. */
export const MAX_GRPC_MATCHES = 8;
const MAX_NAME = 1024;
/** Gateway API's patterns for an Exact service (`pkg.Service`) and method. */
const SERVICE = /^\.?[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$/;
const METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;
const SUPPORTED = ['RequestHeaderModifier', 'ResponseHeaderModifier'];
const REFUSED: Readonly<Record<string, string>> = {
  ...REFUSED_FILTERS,
  RequestMirror:
    'RequestMirror is not supported on GRPCRoute: a gRPC stream is relayed as it flows and cannot be copied to a shadow; mirror with an HTTPRoute instead',
};

export interface CompiledGrpcRule {
  readonly rule: GrpcRule;
  readonly matches: readonly GrpcMatch[];
}

export function grpcRules(ctx: RuleContext, value: unknown): CompiledGrpcRule[] {
  const { check } = ctx;
  const keys = ['name', 'matches', 'filters', 'backendRefs'];
  const refused = {
    sessionPersistence: 'is not supported: the sidecar balances each request on its own',
    timeouts: 'is not part of GRPCRoute; a gRPC call carries its own deadline (grpc-timeout)',
    retry: 'is not part of GRPCRoute; set retries on the service',
  };
  return compileRules(ctx, value, 'GRPCRoute', keys, refused, (o, origin, at) => {
    const matches = grpcMatches(ctx, o.matches, `${at}.matches`);
    let requestHeaders: HeaderModifier | null = null;
    let responseHeaders: HeaderModifier | null = null;
    const seen = new Map<string, number>();
    check.list(o.filters, `${at}.filters`, MAX_FILTERS).forEach((item, i) => {
      const f = `${at}.filters[${i}]`;
      const filter = filterSettings(check, item, f, SUPPORTED, REFUSED);
      if (filter === null) return;
      const first = seen.get(filter.type);
      if (first !== undefined) {
        check.problem(
          `${f}.type`,
          `${filter.type} is already filters[${first}]: a rule takes each filter type once`,
        );
        return;
      }
      seen.set(filter.type, i);
      if (filter.type === 'RequestHeaderModifier')
        requestHeaders = headerModifier(check, filter.settings, `${f}.requestHeaderModifier`);
      else responseHeaders = headerModifier(check, filter.settings, `${f}.responseHeaderModifier`);
    });
    if (o.backendRefs === undefined) check.problem(at, 'needs backendRefs (where to send the calls)');
    const backends = backendRefs(check, o.backendRefs, `${at}.backendRefs`, ctx.namespace, ctx.services);
    return { rule: { origin, requestHeaders, responseHeaders, backends }, matches };
  });
}

function grpcMatches(ctx: RuleContext, value: unknown, at: string): GrpcMatch[] {
  const { check } = ctx;
  const list = check.list(value, at, MAX_GRPC_MATCHES);
  // No matches: every call (Gateway API).
  if (list.length === 0) return [{ method: null, headers: [] }];
  const out: GrpcMatch[] = [];
  list.forEach((item, i) => {
    const m = `${at}[${i}]`;
    const o = check.mapping(item, m, ['method', 'headers']);
    if (o === null) return;
    const method = o.method === undefined ? null : methodMatch(ctx, o.method, `${m}.method`);
    const headers = check.headerMatches(o.headers, `${m}.headers`);
    if (o.method === undefined || method !== null) out.push({ method, headers });
  });
  return out;
}

function methodMatch(ctx: RuleContext, value: unknown, at: string): GrpcMethodMatch | null {
  const { check } = ctx;
  const o = check.mapping(value, at, ['type', 'service', 'method']);
  if (o === null) return null;
  const type = check.oneOf(o.type, `${at}.type`, ['Exact', 'RegularExpression'], 'Exact');
  if (o.service === undefined && o.method === undefined) {
    check.problem(at, 'must set service, method or both (omit method to match every call)');
    return null;
  }
  if (type === 'RegularExpression') {
    const service = o.service === undefined ? null : check.regex(o.service, `${at}.service`);
    const method = o.method === undefined ? null : check.regex(o.method, `${at}.method`);
    if ((o.service !== undefined && service === null) || (o.method !== undefined && method === null))
      return null;
    return {
      type,
      service,
      method,
      serviceSource: (o.service as string | undefined) ?? null,
      methodSource: (o.method as string | undefined) ?? null,
    };
  }
  const name = (v: unknown, a: string, pattern: RegExp, what: string): string | null | undefined => {
    if (v === undefined) return null;
    const text = check.string(v, a, MAX_NAME);
    if (text === null) return undefined;
    if (!pattern.test(text)) {
      check.problem(a, `${showValue(text)} is not ${what}`);
      return undefined;
    }
    return text;
  };
  const service = name(
    o.service,
    `${at}.service`,
    SERVICE,
    'a fully qualified gRPC service such as helloworld.Greeter',
  );
  const method = name(o.method, `${at}.method`, METHOD, 'a gRPC method name such as SayHello');
  if (service === undefined || method === undefined || type === null) return null;
  return { type, service, method };
}
