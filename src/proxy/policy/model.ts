// Authorization policy model, in the spirit of Istio's AuthorizationPolicy. Only parse.ts makes a
// PolicySet, so one you hold is valid, compiled and deep-frozen; evaluate.ts and lint.ts read it and
// never re-validate. This file holds types only: no parsing, no matching.
//
// File schema (YAML; see README.md for a worked example):
//
//   trust_domains: [example.org]          # optional: trust domains lint treats as known
//   policies:
//     - name: deny-admin                  # unique within the file
//       action: DENY                      # ALLOW | DENY | AUDIT
//       dry_run: false                    # optional: evaluate and report, never enforce
//       rules:                            # at least one; a request matches if any rule matches
//         - from:                         # optional: any caller, authenticated or not
//             principals: [...]           # optional, non-empty: caller must match one
//             not_principals: [...]       # optional, non-empty: caller must match none
//           to:                           # optional: any port, method and path
//             ports: [8080]               # optional, non-empty: 1-65535
//             methods: [GET]              # optional, non-empty: uppercase HTTP methods
//             paths: [/api/*]             # optional, non-empty: exact, prefix or glob
//
// Within a rule every present condition must hold (AND); within a list any entry may (OR).
import type { NormalizedPath } from './normalize.js';

export type PolicyAction = 'ALLOW' | 'DENY' | 'AUDIT';

/**
 * A compiled caller pattern. Written as:
 * - `*`: any authenticated caller (never the unauthenticated one);
 * - `spiffe://td` or `spiffe://td/*`: any ID in the trust domain;
 * - `spiffe://td/ns/*`: `spiffe://td/ns` itself and any ID below it, on a segment boundary
 *   (`/ns/web` yes, `/nsx` no), as SpiffeId.contains;
 * - `spiffe://td/ns/web`: exactly that ID.
 */
export type PrincipalPattern =
  | { readonly kind: 'any'; readonly text: string }
  | { readonly kind: 'domain'; readonly text: string; readonly trustDomain: string }
  | { readonly kind: 'prefix'; readonly text: string; readonly trustDomain: string; readonly path: string }
  | { readonly kind: 'exact'; readonly text: string; readonly trustDomain: string; readonly path: string };

/**
 * A compiled request-path pattern, matched against the normalized path (see normalize.ts and
 * path-pattern.ts; a trailing "/" on the request path does not change the answer):
 * - exact `/a/b`;
 * - prefix `/api/*`: `/api` itself and anything below it (a trailing `/*` is a prefix, as in
 *   Istio, and also covers the bare `/api` so that a DENY cannot be sidestepped by dropping the
 *   slash);
 * - glob: `*` as a whole segment is exactly one segment, `*` inside a segment is any run of
 *   characters within it (`/v*` matches `/v1`), and a `**` segment (or a trailing `*`) is any
 *   number of segments.
 */
export interface PathPattern {
  readonly kind: 'exact' | 'prefix' | 'glob';
  /** As written in the file. */
  readonly text: string;
  /** For `prefix`: the path without the trailing `/*` (`/api`), or '' for `/*`. */
  readonly base: string;
  /**
   * For `glob`: the single-segment matchers between `**`s, first block anchored at the start and
   * last at the end (segments a, **, b, c, ** give [[a], [b, c], []]); empty for the other kinds.
   */
  readonly blocks: readonly (readonly SegmentMatcher[])[];
}

/** Matches one path segment: literally, any non-empty one (`*`), or with `*`s inside (`v*`, `a*b`). */
export type SegmentMatcher =
  | { readonly kind: 'literal'; readonly text: string }
  | { readonly kind: 'one' }
  | {
      readonly kind: 'wildcard';
      readonly prefix: string;
      /** The literal runs between the inner `*`s, in order. */
      readonly middle: readonly string[];
      readonly suffix: string;
    };

export interface RuleSource {
  /** Absent: no constraint on the caller (an unauthenticated one included). */
  readonly principals?: readonly PrincipalPattern[];
  readonly notPrincipals?: readonly PrincipalPattern[];
}

export interface RuleTarget {
  readonly ports?: readonly number[];
  readonly methods?: readonly string[];
  readonly paths?: readonly PathPattern[];
}

export interface PolicyRule {
  /** Position in the policy's `rules` list, from 0, as in the dotted paths of errors. */
  readonly index: number;
  readonly from?: RuleSource;
  readonly to?: RuleTarget;
}

export interface Policy {
  readonly name: string;
  readonly action: PolicyAction;
  /** Evaluated and reported, never enforced. Defaults to false. */
  readonly dryRun: boolean;
  readonly rules: readonly PolicyRule[];
}

export interface PolicySet {
  /** Where the set came from (a file path, or a label for inline text), for messages. */
  readonly source: string;
  readonly policies: readonly Policy[];
  /** Trust domain names the file declares as known (`trust_domains`), for lint. */
  readonly trustDomains: readonly string[];
}

/** Names one rule of one policy. */
export interface RuleRef {
  readonly policy: string;
  readonly index: number;
  readonly action: PolicyAction;
}

/**
 * A would-be denial by a dry-run policy: a dry-run DENY rule that matched (`index` is the rule),
 * or a dry-run ALLOW policy none of whose rules matched while no ALLOW rule matched at all
 * (`index` is null: the policy as a whole would have denied by default).
 */
export interface DryRunDenial {
  readonly policy: string;
  readonly index: number | null;
  readonly action: 'ALLOW' | 'DENY';
}

export interface AuthzRequest {
  /** The caller's verified SPIFFE ID, or null for plaintext/unauthenticated traffic. */
  readonly principal: string | null;
  /** The destination (inbound) port. */
  readonly port: number;
  readonly protocol: 'http' | 'tcp';
  /** HTTP method as sent; ignored for TCP. */
  readonly method?: string;
  /**
   * The request path as normalizeRequestTarget made it (the query is not matched), which is also
   * what the app receives; null for the asterisk form. Ignored for TCP.
   */
  readonly path?: NormalizedPath | null;
}

export interface Decision {
  /** The enforced outcome: dry-run policies never change it. */
  readonly allow: boolean;
  /**
   * False when enforcing the dry-run policies would have denied this allowed request; the enforcer
   * logs and counts it as a dry-run denial. Always true for a denial.
   */
  readonly enforced: boolean;
  /** The enforced rule that decided, or null when a default decided. */
  readonly rule: RuleRef | null;
  /** One line for logs and the CLI, e.g. `policy "deny-admin" rule #0 (DENY) matched`. */
  readonly reason: string;
  /** Every AUDIT rule (dry-run or not) that matched. */
  readonly audits: readonly RuleRef[];
  /** Would-be denials by dry-run policies; empty when the request is denied anyway. */
  readonly dryRunDenials: readonly DryRunDenial[];
}
