// The outbound router: requests on an `http` listener whose service has HTTP routes (routes/model.ts)
// go where the matching rule says (routes/select.ts, routes/filters.ts). A listener's service with no routes is not touched: one map
// lookup, and the request takes the service's own stack as before. Otherwise, in two steps the
// listener calls around its deadline work (outbound/listener.ts):
//   decide: select the rule (none: 404 route-not-found); a redirect answers at once; else pick a
//           backend by weight (none, or one that is not a configured service: 500 no-backend, as the
//           Gateway API says), whose request timeout (the rule's, else the backend's) sets the deadline;
//   send:   apply URLRewrite and RequestHeaderModifier, name the rule in the context, and send through
//           the backend's stack for the rule's timeouts and retry (UpstreamService.stackFor), with
//           ResponseHeaderModifier around the handler and RequestMirror copies to the shadows.
// A new table replaces the old one whole; requests already decided keep the stack they were given.
import type { ServerResponse } from 'node:http';
import type { Clock } from '../../spiffe/clock.js';
import { respondWithError } from '../http-relay.js';
import type { CountCell } from '../metric-cells.js';
import { type ExchangeHandler, ForwardingHandler, type ProxyRequest } from '../resilience/exchange.js';
import {
  EMPTY_ROUTE_TABLE,
  type HeaderModifier,
  type HttpRouteEntry,
  type HttpRule,
  headerValue,
  modifyRequestHeaders,
  modifyResponseHeaders,
  pickBackend,
  type RouteTable,
  type RuleOrigin,
  redirectResponse,
  rewriteHost,
  rewriteTarget,
  selectHttpRoute,
} from '../routes/index.js';
import { Mirroring } from './mirror.js';
import type { RouteMetrics } from './route-metrics.js';
import type { RoutedService } from './routed-service.js';

export interface RouterDeps {
  /** The live service of a name (UpstreamServices). */
  readonly services: { get(name: string): RoutedService | undefined };
  readonly random: () => number;
  readonly clock: Clock;
  readonly metrics: RouteMetrics;
}

/** What the router answers itself: a redirect or a refusal. */
export interface RouteAnswer {
  readonly kind: 'answer';
  readonly status: number;
  /** `x-sigil-error`, for refusals. */
  readonly error: string | null;
  /** `Location`, for redirects. */
  readonly location: string | null;
}

/** Where a request goes. */
export interface RouteSend {
  readonly kind: 'send';
  readonly entry: HttpRouteEntry;
  readonly route: string;
  readonly service: RoutedService;
  /** The whole-request timeout for the listener's deadline (0 = none). */
  readonly requestTimeoutMs: number;
}

export type RouteDecision = RouteAnswer | RouteSend;
export type { RoutedService };

const NOT_FOUND: RouteAnswer = Object.freeze({
  kind: 'answer',
  status: 404,
  error: 'route-not-found',
  location: null,
});
const NO_BACKEND: RouteAnswer = Object.freeze({
  kind: 'answer',
  status: 500,
  error: 'no-backend',
  location: null,
});

/** A rule's display name and metric cells, resolved once per table. */
interface RuleCells {
  readonly name: string;
  /** By service name. */
  readonly backends: ReadonlyMap<string, CountCell>;
  readonly redirected: CountCell;
  readonly unsent: CountCell;
}

/** How a rule is named in logs, metrics, spans and the request context: `namespace/name` and the rule. */
export function ruleName(origin: RuleOrigin): string {
  return `${origin.route}/${origin.name}`;
}

export class OutboundRouter {
  private table: RouteTable = EMPTY_ROUTE_TABLE;
  private rules = new Map<HttpRule, RuleCells>();
  private readonly mirroring: Mirroring;

  constructor(private readonly deps: RouterDeps) {
    this.mirroring = new Mirroring(deps);
  }

  /** The table in force. */
  get current(): RouteTable {
    return this.table;
  }

  /** Puts `table` in force for every request from now on. */
  setTable(table: RouteTable): void {
    const rules = new Map<HttpRule, RuleCells>();
    for (const entries of table.http.values())
      for (const { rule } of entries) if (!rules.has(rule)) rules.set(rule, this.cellsFor(rule));
    this.rules = rules;
    this.table = table;
  }

  /** The HTTP routes of `parent`, in precedence order; undefined when it has none (the service's own path). */
  routesOf(parent: string): readonly HttpRouteEntry[] | undefined {
    return this.table.http.get(parent);
  }

  /** Where a request to a parent with `entries` goes, or what the proxy answers. */
  decide(
    entries: readonly HttpRouteEntry[],
    method: string,
    target: string,
    headers: readonly string[],
  ): RouteDecision {
    const entry = selectHttpRoute(entries, { method, target, headers });
    if (entry === null) return NOT_FOUND;
    const rule = entry.rule;
    const cells = this.rules.get(rule) ?? this.cellsFor(rule);
    if (rule.redirect !== null) {
      cells.redirected.value++;
      // One Host at most: a request with two was refused before routing (request-refusal.ts).
      const host = headerValue(headers, 'host');
      const redirect = redirectResponse(rule.redirect, entry.match, target, host, 'http');
      return { kind: 'answer', status: redirect.status, error: null, location: redirect.location };
    }
    const backend = pickBackend(rule.backends, this.deps.random);
    const service = backend === null ? undefined : this.deps.services.get(backend);
    if (backend === null || service === undefined) {
      cells.unsent.value++;
      return NO_BACKEND;
    }
    cells.backends.get(backend)!.value++;
    return {
      kind: 'send',
      entry,
      route: cells.name,
      service,
      requestTimeoutMs: service.requestTimeoutMsFor(rule.overrides),
    };
  }

  /** Sends a request the listener built (its deadline from `decision`) where `decision` says. */
  send(decision: RouteSend, request: ProxyRequest, handler: ExchangeHandler): void {
    const { entry, service } = decision;
    const rule = entry.rule;
    request.context.route = decision.route;
    const routed = rule.rewrite === null && rule.requestHeaders === null ? request : filtered(entry, request);
    const stack = service.stackFor(rule.overrides);
    const target =
      rule.responseHeaders === null ? handler : new ResponseHeaderRewrite(handler, rule.responseHeaders);
    if (rule.mirrors.length === 0) stack(routed, target);
    else this.mirroring.send(rule.mirrors, routed, target, stack);
  }

  private cellsFor(rule: HttpRule): RuleCells {
    const name = ruleName(rule.origin);
    const { metrics } = this.deps;
    return {
      name,
      backends: new Map(rule.backends.map(({ service }) => [service, metrics.routed(name, service)])),
      redirected: metrics.routed(name, '(redirect)'),
      unsent: metrics.routed(name, '(none)'),
    };
  }
}

/** The request as the rule's URLRewrite and RequestHeaderModifier make it. */
function filtered(entry: HttpRouteEntry, request: ProxyRequest): ProxyRequest {
  const { rewrite, requestHeaders } = entry.rule;
  let path = request.path;
  let headers = request.headers;
  if (rewrite !== null) {
    path = rewriteTarget(entry.rule, entry.match, path);
    if (rewrite.hostname !== null) headers = rewriteHost(headers, rewrite.hostname);
  }
  if (requestHeaders !== null) headers = modifyRequestHeaders(requestHeaders, headers);
  return { ...request, path, headers };
}

/** Applies ResponseHeaderModifier to the response head on its way to the caller. */
class ResponseHeaderRewrite extends ForwardingHandler {
  constructor(
    target: ExchangeHandler,
    private readonly modifier: HeaderModifier,
  ) {
    super(target);
  }

  override onHeaders(
    statusCode: number,
    rawHeaders: Buffer[],
    resume: () => void,
    statusText: string,
  ): boolean {
    const headers = statusCode < 200 ? rawHeaders : modifyResponseHeaders(this.modifier, rawHeaders);
    return this.target.onHeaders(statusCode, headers, resume, statusText);
  }
}

/** Writes what the router answers itself: a redirect (Location, no body) or a refusal. */
export function writeRouteAnswer(res: ServerResponse, answer: RouteAnswer): void {
  if (answer.location !== null) {
    res.writeHead(answer.status, ['location', answer.location, 'content-length', '0']);
    res.end();
    return;
  }
  respondWithError(res, answer.status, answer.error ?? 'route-error', `sigil proxy: ${answer.error}`);
}
