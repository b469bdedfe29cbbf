// The route table an outbound listener consults, compiled from Gateway API `HTTPRoute` and
// `GRPCRoute` objects (routes/parse.ts). Routes attach, as GAMMA's mesh routes do, to a service:
// `parentRefs: [{kind: Service, name: S}]` applies to every outbound listener that sends to the
// `services[].name` S, and `backendRefs` name the services the traffic goes to instead (S itself
// among them for the stable version). A parent with no routes sends everything to itself, as before.
//
// Everything here is plain data: parse.ts builds it, select.ts matches requests against it,
// filters.ts applies a rule's filters, and the outbound router (outbound/router.ts) runs it.

/** One weighted backend: a configured service. Weight 0 takes no traffic (Gateway API). */
export interface WeightedBackend {
  /** A `services[].name`. */
  readonly service: string;
  readonly weight: number;
}

export interface HeaderPair {
  /** As written in the route; compared case-insensitively. */
  readonly name: string;
  readonly value: string;
}

/** RequestHeaderModifier / ResponseHeaderModifier: applied remove, then set, then add. */
export interface HeaderModifier {
  readonly set: readonly HeaderPair[];
  readonly add: readonly HeaderPair[];
  /** Names, as written. */
  readonly remove: readonly string[];
}

/** How a redirect or rewrite changes the path (Gateway API HTTPPathModifier). */
export type PathModifier =
  | { readonly type: 'ReplaceFullPath'; readonly value: string }
  /** Replaces the part the rule's PathPrefix match matched; only valid on a rule whose matches are PathPrefix. */
  | { readonly type: 'ReplacePrefixMatch'; readonly value: string };

export interface RequestRedirect {
  readonly scheme: 'http' | 'https' | null;
  readonly hostname: string | null;
  readonly path: PathModifier | null;
  readonly port: number | null;
  /** 301, 302 (the default), 303, 307 or 308. */
  readonly statusCode: number;
}

export interface UrlRewrite {
  readonly hostname: string | null;
  readonly path: PathModifier | null;
}

export interface RequestMirror {
  /** The shadow: a `services[].name`. */
  readonly service: string;
  /** Share of matching requests mirrored, 0 < share ≤ 1 (`percent` / `fraction`, default all). */
  readonly share: number;
}

/** GEP-1731 `retry`, mapped onto the service's retry layer. Unset fields keep the service's. */
export interface RouteRetry {
  /** Tries in all (GEP-1731 `attempts` counts retries, so this is attempts + 1). */
  readonly maxAttempts: number | null;
  readonly onStatuses: readonly number[] | null;
  /** `backoff`: the base of the service's full-jitter backoff (its max stays). */
  readonly backoffMs: number | null;
}

/** `timeouts`: 0 disables one (Gateway API: "0s" means no timeout); null keeps the service's. */
export interface RouteTimeouts {
  /** Whole request, retries included: replaces the service's `timeouts.request`. */
  readonly requestMs: number | null;
  /** Each try: replaces the service's `timeouts.try`. */
  readonly backendRequestMs: number | null;
}

/** The resilience settings a rule overrides; a rule with none shares the service's own stack. */
export interface RouteOverrides {
  readonly timeouts: RouteTimeouts;
  readonly retry: RouteRetry | null;
}

export type PathMatch =
  | { readonly type: 'Exact'; readonly value: string }
  /** Element-wise prefix: `/a` matches `/a`, `/a/` and `/a/b`, not `/ab`; a trailing `/` is ignored. */
  | { readonly type: 'PathPrefix'; readonly value: string }
  | { readonly type: 'RegularExpression'; readonly value: string; readonly regex: RegExp };

export type ValueMatch =
  | { readonly type: 'Exact'; readonly name: string; readonly value: string }
  | { readonly type: 'RegularExpression'; readonly name: string; readonly regex: RegExp };

/** One entry of `matches`: every present condition must hold. */
export interface HttpMatch {
  /** Absent in the route: PathPrefix "/". */
  readonly path: PathMatch;
  /** Names lowercased. */
  readonly headers: readonly ValueMatch[];
  /** Names as written (query names are case-sensitive). */
  readonly queryParams: readonly ValueMatch[];
  readonly method: string | null;
}

/** Where a rule came from, for `route check`, logs, metrics and spans. */
export interface RuleOrigin {
  /** `namespace/name` of the route object (namespace "default" when absent). */
  readonly route: string;
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  /** Index in `spec.rules`. */
  readonly index: number;
  /** The rule's `name`, else `rules[index]`. */
  readonly name: string;
}

export interface HttpRule {
  readonly origin: RuleOrigin;
  readonly requestHeaders: HeaderModifier | null;
  readonly responseHeaders: HeaderModifier | null;
  /** Set: the proxy answers with a redirect and nothing goes upstream (no backends then). */
  readonly redirect: RequestRedirect | null;
  readonly rewrite: UrlRewrite | null;
  readonly mirrors: readonly RequestMirror[];
  /** Empty only with `redirect`. All weights 0: the proxy answers 500 (Gateway API). */
  readonly backends: readonly WeightedBackend[];
  readonly overrides: RouteOverrides;
}

/** One match of one rule, in the order select.ts tries them (Gateway API precedence). */
export interface HttpRouteEntry {
  readonly match: HttpMatch;
  readonly rule: HttpRule;
}

export type GrpcMethodMatch =
  | {
      readonly type: 'Exact';
      /** Fully qualified service, e.g. `helloworld.Greeter`; null matches any. */
      readonly service: string | null;
      readonly method: string | null;
    }
  | {
      readonly type: 'RegularExpression';
      readonly service: RegExp | null;
      readonly method: RegExp | null;
      /** The patterns as written, for precedence (their length) and display. */
      readonly serviceSource: string | null;
      readonly methodSource: string | null;
    };

export interface GrpcMatch {
  /** Null: any method. */
  readonly method: GrpcMethodMatch | null;
  readonly headers: readonly ValueMatch[];
}

/** GRPCRoute rules: header modifiers and weighted backends (RequestMirror is refused on GRPCRoute). */
export interface GrpcRule {
  readonly origin: RuleOrigin;
  readonly requestHeaders: HeaderModifier | null;
  readonly responseHeaders: HeaderModifier | null;
  readonly backends: readonly WeightedBackend[];
}

export interface GrpcRouteEntry {
  readonly match: GrpcMatch;
  readonly rule: GrpcRule;
}

/** Every loaded route, by the parent service it attaches to, entries in precedence order. */
export interface RouteTable {
  readonly http: ReadonlyMap<string, readonly HttpRouteEntry[]>;
  readonly grpc: ReadonlyMap<string, readonly GrpcRouteEntry[]>;
  /** The route objects loaded (`namespace/name`), for /config and logs. */
  readonly routes: readonly {
    readonly kind: 'HTTPRoute' | 'GRPCRoute';
    readonly name: string;
    readonly parents: readonly string[];
  }[];
}

export const EMPTY_ROUTE_TABLE: RouteTable = Object.freeze({
  http: new Map(),
  grpc: new Map(),
  routes: Object.freeze([]),
});

/** What select.ts reads of a request: the raw target and the raw header list. */
export interface RouteRequest {
  readonly method: string;
  /** The request target as sent: path and query. */
  readonly target: string;
  /** Flat name/value list as in ProxyRequest.headers. */
  readonly headers: readonly string[];
}

/** Marks a request sent to a shadow by RequestMirror: the shadow knows it is a copy. */
export const MIRROR_HEADER = 'x-sigil-mirror';
