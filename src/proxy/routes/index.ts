// Routes: Gateway API HTTPRoute/GRPCRoute files compiled into a RouteTable (parse), matched per
// request (select), their filters (filters), hot reload (load) and the `route check` CLI command.
// The outbound router runs them; docs/proxy-routes.md is the reference of the supported subset.

export type { RouteCliIo } from './check-cli.js';
export { routeCommand } from './check-cli.js';
export type { BackendShare, Explanation } from './explain.js';
export { explainGrpc, explainHttp } from './explain.js';
export {
  modifyRequestHeaders,
  modifyResponseHeaders,
  redirectResponse,
  rewriteHost,
  rewriteTarget,
} from './filters.js';
export type { RoutesWatch, WatchRoutesOptions } from './load.js';
export { loadRouteFile, watchRouteFile } from './load.js';
export type {
  GrpcMatch,
  GrpcMethodMatch,
  GrpcRouteEntry,
  GrpcRule,
  HeaderModifier,
  HeaderPair,
  HttpMatch,
  HttpRouteEntry,
  HttpRule,
  PathMatch,
  PathModifier,
  RequestMirror,
  RequestRedirect,
  RouteOverrides,
  RouteRequest,
  RouteRetry,
  RouteTable,
  RouteTimeouts,
  RuleOrigin,
  UrlRewrite,
  ValueMatch,
  WeightedBackend,
} from './model.js';
export { EMPTY_ROUTE_TABLE, MIRROR_HEADER } from './model.js';
export { MAX_ROUTE_OBJECTS, MAX_ROUTES_FILE_BYTES, parseRouteFile } from './parse.js';
export { headerValue, MAX_QUERY_PARAMS, pickBackend, selectGrpcRoute, selectHttpRoute } from './select.js';
