// Finds policy mistakes that parse cannot: rules that can never match, ALLOW rules a DENY shadows,
// principals outside the known trust domains, duplicates, absurd path globs (lint-paths.ts), and
// sets that enforce nothing. Checks
// are conservative: an "error" is certain (the rule is dead or names an unknown domain), while
// overlaps the analysis cannot prove are reported as warnings. Pure; the CLI formats the findings.
import { parseTrustDomain } from '../../spiffe/id.js';
import { describeRule } from './evaluate.js';
import { lintPathPattern, pathCovers, pathsMayIntersect } from './lint-paths.js';
import type { Policy, PolicyRule, PolicySet, PrincipalPattern, RuleSource, RuleTarget } from './model.js';

export type LintCode =
  | 'never-matches'
  | 'redundant-wildcard'
  | 'many-wildcards'
  | 'matches-every-path'
  | 'nonstandard-method'
  | 'shadowed-allow'
  | 'overlap'
  | 'unknown-trust-domain'
  | 'duplicate-rule'
  | 'deny-blocks-tcp'
  | 'allows-unauthenticated'
  | 'no-policies'
  | 'audit-only'
  | 'all-dry-run';

export interface LintFinding {
  readonly severity: 'error' | 'warning';
  readonly code: LintCode;
  /** The policy the finding is about; null for findings about the whole set. */
  readonly policy: string | null;
  /** The rule's index within its policy, when the finding is about one rule. */
  readonly rule?: number;
  readonly message: string;
}

export interface LintOptions {
  /** Trust domains (names or `spiffe://` IDs) known besides the file's own `trust_domains`. */
  readonly trustDomains?: readonly string[];
}

/** RFC 9110 §9 and RFC 5789 (PATCH): a method outside these is almost always a typo. */
const STANDARD_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
]);

export function lintPolicySet(set: PolicySet, options: LintOptions = {}): LintFinding[] {
  const findings: LintFinding[] = [];
  findings.push(...lintSet(set.policies));
  const known = new Set([
    ...set.trustDomains,
    ...(options.trustDomains ?? []).map((td) => parseTrustDomain(td).name),
  ]);
  for (const policy of set.policies) {
    for (const rule of policy.rules) {
      const at = { policy: policy.name, rule: rule.index };
      for (const [severity, code, message] of lintRule(policy, rule, known)) {
        findings.push({ severity, code, ...at, message });
      }
    }
  }
  findings.push(...lintDuplicates(set.policies), ...lintOverlaps(set.policies));
  return findings;
}

function lintSet(policies: readonly Policy[]): LintFinding[] {
  const whole = (code: LintCode, message: string): LintFinding => ({
    severity: 'warning',
    code,
    policy: null,
    message,
  });
  if (policies.length === 0) return [whole('no-policies', 'no policies: every request is allowed')];
  if (policies.every((p) => p.action === 'AUDIT')) {
    return [whole('audit-only', 'only AUDIT policies: nothing is enforced, every request is allowed')];
  }
  if (policies.every((p) => p.dryRun || p.action === 'AUDIT')) {
    return [whole('all-dry-run', 'every ALLOW/DENY policy is dry-run: nothing is enforced')];
  }
  return [];
}

type RuleFinding = readonly ['error' | 'warning', LintCode, string];

function lintRule(policy: Policy, rule: PolicyRule, known: ReadonlySet<string>): RuleFinding[] {
  const out: RuleFinding[] = [];
  const { from, to } = rule;
  if (from?.principals && from.notPrincipals) {
    const not = from.notPrincipals;
    if (from.principals.every((p) => not.some((n) => principalCovers(n, p)))) {
      out.push([
        'error',
        'never-matches',
        'can never match: not_principals exclude every one of its principals',
      ]);
    }
  }
  for (const path of to?.paths ?? []) {
    for (const { severity, code, message } of lintPathPattern(path, policy.action)) {
      out.push([severity, code, message]);
    }
  }
  for (const method of to?.methods ?? []) {
    if (!STANDARD_METHODS.has(method)) {
      out.push([
        'warning',
        'nonstandard-method',
        `method ${JSON.stringify(method)} is not a standard HTTP method (${[...STANDARD_METHODS].join(', ')})`,
      ]);
    }
  }
  if (known.size > 0) {
    const check = (
      patterns: readonly PrincipalPattern[] | undefined,
      key: string,
      severity: 'error' | 'warning',
    ) => {
      for (const p of patterns ?? []) {
        if (p.kind !== 'any' && !known.has(p.trustDomain)) {
          out.push([
            severity,
            'unknown-trust-domain',
            `${key} ${JSON.stringify(p.text)} is outside the known trust domains (${[...known].join(', ')})`,
          ]);
        }
      }
    };
    check(from?.principals, 'principal', 'error');
    // Excluding a domain nobody can come from is pointless but harmless.
    check(from?.notPrincipals, 'not_principal', 'warning');
  }
  if (policy.action === 'DENY' && (to?.methods || to?.paths) && !to?.ports) {
    out.push([
      'warning',
      'deny-blocks-tcp',
      'denies all opaque TCP traffic from the callers it names: methods/paths cannot be checked on TCP (add ports to limit it to HTTP ports)',
    ]);
  }
  if (policy.action === 'ALLOW' && !from?.principals) {
    out.push([
      'warning',
      'allows-unauthenticated',
      'also allows unauthenticated (plaintext) callers; add principals: ["*"] to require an identity',
    ]);
  }
  return out;
}

function lintDuplicates(policies: readonly Policy[]): LintFinding[] {
  const out: LintFinding[] = [];
  const first = new Map<string, { policy: string; index: number }>();
  for (const policy of policies) {
    for (const rule of policy.rules) {
      const key = `${policy.action}|${policy.dryRun}|${canonicalRule(rule)}`;
      const seen = first.get(key);
      if (seen === undefined) {
        first.set(key, { policy: policy.name, index: rule.index });
        continue;
      }
      out.push({
        severity: 'warning',
        code: 'duplicate-rule',
        policy: policy.name,
        rule: rule.index,
        message: `duplicates ${describeRule({ ...seen, action: policy.action })}`,
      });
    }
  }
  return out;
}

function canonicalRule(rule: PolicyRule): string {
  const texts = (list: readonly { text: string }[] | undefined) => list?.map((p) => p.text).sort();
  return JSON.stringify([
    texts(rule.from?.principals),
    texts(rule.from?.notPrincipals),
    rule.to?.ports ? [...rule.to.ports].sort((a, b) => a - b) : undefined,
    rule.to?.methods ? [...rule.to.methods].sort() : undefined,
    texts(rule.to?.paths),
  ]);
}

function lintOverlaps(policies: readonly Policy[]): LintFinding[] {
  const out: LintFinding[] = [];
  const denies = policies.filter((p) => p.action === 'DENY');
  for (const allowPolicy of policies.filter((p) => p.action === 'ALLOW')) {
    for (const allow of allowPolicy.rules) {
      for (const denyPolicy of denies) {
        for (const deny of denyPolicy.rules) {
          const denyRef = describeRule({ policy: denyPolicy.name, index: deny.index, action: 'DENY' });
          const at = { policy: allowPolicy.name, rule: allow.index };
          if (sourceCovers(deny.from, allow.from) && targetCovers(deny.to, allow.to)) {
            out.push(
              denyPolicy.dryRun
                ? {
                    severity: 'warning',
                    code: 'shadowed-allow',
                    ...at,
                    message: `will never take effect once dry-run ${denyRef} is enforced: it matches every request this rule does`,
                  }
                : {
                    severity: 'error',
                    code: 'shadowed-allow',
                    ...at,
                    message: `can never take effect: ${denyRef} matches every request this rule does`,
                  },
            );
          } else if (sourcesMayIntersect(deny.from, allow.from) && targetsMayIntersect(deny.to, allow.to)) {
            out.push({
              severity: 'warning',
              code: 'overlap',
              ...at,
              message: `partly overlaps ${denyRef}: requests matching both are denied`,
            });
          }
        }
      }
    }
  }
  return out;
}

/** True when `outer` matches every caller `inner` matches (patterns nest like a tree). */
function principalCovers(outer: PrincipalPattern, inner: PrincipalPattern): boolean {
  if (outer.kind === 'any') return true;
  if (inner.kind === 'any' || outer.trustDomain !== inner.trustDomain) return false;
  switch (outer.kind) {
    case 'domain':
      return true;
    case 'prefix':
      return (
        inner.kind !== 'domain' && (inner.path === outer.path || inner.path.startsWith(`${outer.path}/`))
      );
    case 'exact':
      return inner.kind === 'exact' && inner.path === outer.path;
  }
}

function principalsIntersect(a: PrincipalPattern, b: PrincipalPattern): boolean {
  return principalCovers(a, b) || principalCovers(b, a);
}

/** True when every caller `inner` admits is admitted by `outer`. */
function sourceCovers(outer: RuleSource | undefined, inner: RuleSource | undefined): boolean {
  if (outer?.principals) {
    const outerPrincipals = outer.principals;
    // Without principals, inner admits unauthenticated callers, whom no pattern covers.
    if (!inner?.principals?.every((p) => outerPrincipals.some((q) => principalCovers(q, p)))) return false;
  }
  // Everyone outer excludes must already be outside inner.
  return (outer?.notPrincipals ?? []).every(
    (q) =>
      (inner?.notPrincipals ?? []).some((n) => principalCovers(n, q)) ||
      inner?.principals?.every((p) => !principalsIntersect(p, q)) === true,
  );
}

function sourcesMayIntersect(a: RuleSource | undefined, b: RuleSource | undefined): boolean {
  if (a?.principals && b?.principals) {
    const bp = b.principals;
    if (!a.principals.some((p) => bp.some((q) => principalsIntersect(p, q)))) return false;
  }
  const excludedAll = (s: RuleSource | undefined, by: RuleSource | undefined) =>
    s?.principals !== undefined &&
    by?.notPrincipals !== undefined &&
    s.principals.every((p) => by.notPrincipals!.some((n) => principalCovers(n, p)));
  return !excludedAll(a, b) && !excludedAll(b, a);
}

/**
 * True when `deny` matches every request `allow` matches. Methods and paths are compared as for
 * HTTP: on TCP a DENY ignores them and an ALLOW that has them does not match, so TCP adds nothing.
 */
function targetCovers(deny: RuleTarget | undefined, allow: RuleTarget | undefined): boolean {
  const subset = <T>(
    outer: readonly T[] | undefined,
    inner: readonly T[] | undefined,
    covers: (o: T, i: T) => boolean,
  ) => outer === undefined || inner?.every((i) => outer.some((o) => covers(o, i))) === true;
  return (
    subset(deny?.ports, allow?.ports, (o, i) => o === i) &&
    subset(deny?.methods, allow?.methods, (o, i) => o === i) &&
    subset(deny?.paths, allow?.paths, pathCovers)
  );
}

function targetsMayIntersect(a: RuleTarget | undefined, b: RuleTarget | undefined): boolean {
  const meet = <T>(x: readonly T[] | undefined, y: readonly T[] | undefined, may: (p: T, q: T) => boolean) =>
    x === undefined || y === undefined || x.some((p) => y.some((q) => may(p, q)));
  return (
    meet(a?.ports, b?.ports, (p, q) => p === q) &&
    meet(a?.methods, b?.methods, (p, q) => p === q) &&
    meet(a?.paths, b?.paths, pathsMayIntersect)
  );
}
