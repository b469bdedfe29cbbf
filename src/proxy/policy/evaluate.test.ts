import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { evaluate, needsRequestDetails } from './evaluate.js';
import type { AuthzRequest, Decision } from './model.js';
import { type NormalizedPath, normalizeRequestTarget } from './normalize.js';
import { parsePolicyFile } from './parse.js';

const WEB = 'spiffe://example.org/ns/web/frontend';
const BATCH = 'spiffe://example.org/ns/batch';
const OTHER_TD = 'spiffe://other.org/ns/web/frontend';

function policies(...list: object[]) {
  return parsePolicyFile(stringify({ policies: list }), 'test.yaml');
}

/** An HTTP request as the listeners hand it over: its target normalized the default way. */
function http(principal: string | null, target: string, method = 'GET', port = 8080): AuthzRequest {
  const normalized = normalizeRequestTarget(target);
  if (!normalized.ok) throw new Error(`test target refused: ${normalized.message}`);
  return { principal, port, protocol: 'http', method, path: normalized.path };
}

function tcp(principal: string | null, port = 8080): AuthzRequest {
  return { principal, port, protocol: 'tcp' };
}

const allowFrom = (principals: string[], to?: object) => ({
  name: 'allow',
  action: 'ALLOW',
  rules: [{ from: { principals }, ...(to ? { to } : {}) }],
});
const allowTo = (to: object) => ({ name: 'allow', action: 'ALLOW', rules: [{ to }] });
const denyTo = (to: object, from?: object) => ({
  name: 'deny',
  action: 'DENY',
  rules: [{ to, ...(from ? { from } : {}) }],
});

interface Case {
  name: string;
  set: object[];
  request: AuthzRequest;
  allow: boolean;
  /** `policy#index`, or null for a default decision. */
  rule?: string | null;
  reason?: string;
  audits?: string[];
  dryRunDenials?: string[];
}

const ref = (r: { policy: string; index: number | null }) => `${r.policy}#${r.index}`;

const cases: Case[] = [
  // Decision order
  {
    name: 'no policies: allowed by default',
    set: [],
    request: http(null, '/'),
    allow: true,
    rule: null,
    reason: 'no ALLOW policy: allowed by default',
  },
  {
    name: 'DENY wins over a matching ALLOW',
    set: [allowFrom([WEB]), denyTo({ paths: ['/admin/*'] })],
    request: http(WEB, '/admin/users'),
    allow: false,
    rule: 'deny#0',
    reason: 'policy "deny" rule #0 (DENY) matched',
  },
  {
    name: 'DENY wins whatever the file order',
    set: [denyTo({ paths: ['/admin/*'] }), allowFrom([WEB])],
    request: http(WEB, '/admin'),
    allow: false,
    rule: 'deny#0',
  },
  {
    name: 'an ALLOW policy makes everything else default-deny',
    set: [allowFrom([WEB])],
    request: http(BATCH, '/'),
    allow: false,
    rule: null,
    reason: 'default deny: no ALLOW rule matched',
  },
  {
    name: 'a DENY-only set allows what it does not deny',
    set: [denyTo({ paths: ['/admin/*'] })],
    request: http(BATCH, '/api'),
    allow: true,
    rule: null,
  },
  {
    name: 'matching ALLOW names its rule',
    set: [allowFrom([WEB])],
    request: http(WEB, '/'),
    allow: true,
    rule: 'allow#0',
    reason: 'policy "allow" rule #0 (ALLOW) matched',
  },
  {
    name: 'ALLOW policies are a union; the second rule of a policy is reported by index',
    set: [
      allowFrom([BATCH]),
      { name: 'allow2', action: 'ALLOW', rules: [{ to: { ports: [1] } }, { from: { principals: [WEB] } }] },
    ],
    request: http(WEB, '/'),
    allow: true,
    rule: 'allow2#1',
  },
  // AUDIT
  {
    name: 'AUDIT match is reported and allows nothing by itself',
    set: [{ name: 'audit', action: 'AUDIT', rules: [{}] }, allowFrom([BATCH])],
    request: http(WEB, '/'),
    allow: false,
    rule: null,
    audits: ['audit#0'],
  },
  {
    name: 'AUDIT match does not deny',
    set: [{ name: 'audit', action: 'AUDIT', rules: [{ to: { paths: ['/x'] } }] }],
    request: http(WEB, '/x'),
    allow: true,
    audits: ['audit#0'],
  },
  {
    name: 'AUDIT that does not match is not reported',
    set: [{ name: 'audit', action: 'AUDIT', rules: [{ to: { paths: ['/x'] } }] }],
    request: http(WEB, '/y'),
    allow: true,
    audits: [],
  },
  // Dry run
  {
    name: 'dry-run DENY match is reported, not enforced',
    set: [{ ...denyTo({ paths: ['/admin'] }), dry_run: true }],
    request: http(WEB, '/admin'),
    allow: true,
    rule: null,
    dryRunDenials: ['deny#0'],
  },
  {
    name: 'dry-run ALLOW with nothing matching reports a would-be default deny',
    set: [{ ...allowFrom([BATCH]), dry_run: true }],
    request: http(WEB, '/'),
    allow: true,
    dryRunDenials: ['allow#null'],
  },
  {
    name: 'dry-run ALLOW that matches reports nothing',
    set: [{ ...allowFrom([WEB]), dry_run: true }],
    request: http(WEB, '/'),
    allow: true,
    rule: null,
    dryRunDenials: [],
  },
  {
    name: 'dry-run ALLOW unmatched while an enforced ALLOW matches: no would-be denial',
    set: [allowFrom([WEB]), { ...allowFrom([BATCH]), name: 'dry', dry_run: true }],
    request: http(WEB, '/'),
    allow: true,
    rule: 'allow#0',
    dryRunDenials: [],
  },
  {
    name: 'a request denied anyway carries no dry-run denials',
    set: [denyTo({ paths: ['/admin'] }), { ...denyTo({ paths: ['/admin'] }), name: 'dry', dry_run: true }],
    request: http(WEB, '/admin'),
    allow: false,
    rule: 'deny#0',
    dryRunDenials: [],
  },
  // Principals
  {
    name: 'exact principal matches itself',
    set: [allowFrom([WEB])],
    request: http(WEB, '/'),
    allow: true,
  },
  {
    name: 'exact principal does not match a child',
    set: [allowFrom([BATCH])],
    request: http(`${BATCH}/job`, '/'),
    allow: false,
  },
  {
    name: 'prefix principal matches below it',
    set: [allowFrom(['spiffe://example.org/ns/*'])],
    request: http(WEB, '/'),
    allow: true,
  },
  {
    name: 'prefix principal matches the prefix itself',
    set: [allowFrom(['spiffe://example.org/ns/batch/*'])],
    request: http(BATCH, '/'),
    allow: true,
  },
  {
    name: 'prefix principal stops at a segment boundary',
    set: [allowFrom(['spiffe://example.org/ns/bat/*'])],
    request: http(BATCH, '/'),
    allow: false,
  },
  {
    name: 'trust domain "/*" matches any ID in it',
    set: [allowFrom(['spiffe://example.org/*'])],
    request: http(WEB, '/'),
    allow: true,
  },
  {
    name: 'bare trust domain matches any ID in it',
    set: [allowFrom(['spiffe://example.org'])],
    request: http(BATCH, '/'),
    allow: true,
  },
  {
    name: 'trust domain does not match another domain',
    set: [allowFrom(['spiffe://example.org'])],
    request: http(OTHER_TD, '/'),
    allow: false,
  },
  {
    name: '"*" matches any authenticated caller',
    set: [allowFrom(['*'])],
    request: http(OTHER_TD, '/'),
    allow: true,
  },
  {
    name: '"*" does not match an unauthenticated caller',
    set: [allowFrom(['*'])],
    request: http(null, '/'),
    allow: false,
  },
  {
    name: 'not_principals excludes a caller',
    set: [
      { name: 'allow', action: 'ALLOW', rules: [{ from: { principals: ['*'], not_principals: [WEB] } }] },
    ],
    request: http(WEB, '/'),
    allow: false,
  },
  {
    name: 'not_principals lets others through',
    set: [
      { name: 'allow', action: 'ALLOW', rules: [{ from: { principals: ['*'], not_principals: [WEB] } }] },
    ],
    request: http(BATCH, '/'),
    allow: true,
  },
  {
    name: 'DENY not_principals catches an unauthenticated caller',
    set: [{ name: 'deny', action: 'DENY', rules: [{ from: { not_principals: ['spiffe://example.org'] } }] }],
    request: http(null, '/'),
    allow: false,
    rule: 'deny#0',
  },
  {
    name: 'a rule without from matches an unauthenticated caller',
    set: [allowTo({ ports: [8080] })],
    request: http(null, '/'),
    allow: true,
    rule: 'allow#0',
  },
  {
    name: 'a principal that is not a SPIFFE ID counts as unauthenticated',
    set: [allowFrom(['*'])],
    request: http('not-an-id', '/'),
    allow: false,
  },
  // Ports and methods
  {
    name: 'port matches',
    set: [allowTo({ ports: [8080, 9090] })],
    request: http(WEB, '/', 'GET', 9090),
    allow: true,
  },
  {
    name: 'port mismatch',
    set: [allowTo({ ports: [8080] })],
    request: http(WEB, '/', 'GET', 9090),
    allow: false,
  },
  {
    name: 'method matches',
    set: [allowTo({ methods: ['GET', 'HEAD'] })],
    request: http(WEB, '/', 'HEAD'),
    allow: true,
  },
  {
    name: 'method mismatch',
    set: [allowTo({ methods: ['GET'] })],
    request: http(WEB, '/', 'POST'),
    allow: false,
  },
  {
    name: 'methods are case-sensitive',
    set: [allowTo({ methods: ['GET'] })],
    request: http(WEB, '/', 'get'),
    allow: false,
  },
  // Paths
  { name: 'exact path', set: [allowTo({ paths: ['/a/b'] })], request: http(WEB, '/a/b'), allow: true },
  {
    name: 'exact path mismatch',
    set: [allowTo({ paths: ['/a/b'] })],
    request: http(WEB, '/a/b/c'),
    allow: false,
  },
  {
    name: 'prefix path below',
    set: [allowTo({ paths: ['/api/*'] })],
    request: http(WEB, '/api/v1/users'),
    allow: true,
  },
  {
    name: 'prefix path itself',
    set: [allowTo({ paths: ['/api/*'] })],
    request: http(WEB, '/api'),
    allow: true,
  },
  {
    name: 'prefix path segment boundary',
    set: [allowTo({ paths: ['/api/*'] })],
    request: http(WEB, '/apix'),
    allow: false,
  },
  {
    name: 'glob "*" is one segment',
    set: [allowTo({ paths: ['/u/*/edit'] })],
    request: http(WEB, '/u/42/edit'),
    allow: true,
  },
  {
    name: 'glob "*" is not two',
    set: [allowTo({ paths: ['/u/*/edit'] })],
    request: http(WEB, '/u/4/2/edit'),
    allow: false,
  },
  {
    name: 'glob "**" is any depth',
    set: [allowTo({ paths: ['/u/**/edit'] })],
    request: http(WEB, '/u/4/2/edit'),
    allow: true,
  },
  {
    name: 'glob "**" may be empty',
    set: [allowTo({ paths: ['/u/**/edit'] })],
    request: http(WEB, '/u/edit'),
    allow: true,
  },
  {
    name: 'glob "*" inside a segment',
    set: [allowTo({ paths: ['/v*/x'] })],
    request: http(WEB, '/v2/x'),
    allow: true,
  },
  { name: 'query is ignored', set: [allowTo({ paths: ['/a'] })], request: http(WEB, '/a?b=/c'), allow: true },
  // Path normalization keeps DENY from being sidestepped (normalize.test.ts has the refused forms)
  ...['/admin/../admin', '//admin', '/admin/', '/./admin', '/%61dmin', '/x/%2e%2e/admin'].map(
    (path): Case => ({
      name: `DENY /admin catches ${path}`,
      set: [denyTo({ paths: ['/admin'] })],
      request: http(WEB, path),
      allow: false,
      rule: 'deny#0',
    }),
  ),
  // TCP
  {
    name: 'TCP: an ALLOW with paths does not allow TCP',
    set: [allowTo({ ports: [8080], paths: ['/*'] })],
    request: tcp(WEB),
    allow: false,
    rule: null,
  },
  {
    name: 'TCP: an ALLOW with principal and port allows TCP',
    set: [allowFrom([WEB], { ports: [8080] })],
    request: tcp(WEB),
    allow: true,
    rule: 'allow#0',
  },
  {
    name: 'TCP: a DENY with paths denies TCP from the callers it names',
    set: [denyTo({ paths: ['/admin'] }, { principals: [WEB] })],
    request: tcp(WEB),
    allow: false,
    rule: 'deny#0',
  },
  {
    name: 'TCP: a DENY with paths leaves other callers alone',
    set: [denyTo({ paths: ['/admin'] }, { principals: [WEB] })],
    request: tcp(BATCH),
    allow: true,
  },
  {
    name: 'TCP: a DENY with methods still honours its ports',
    set: [denyTo({ ports: [9090], methods: ['POST'] })],
    request: tcp(WEB, 8080),
    allow: true,
  },
  {
    name: 'TCP: method and path given are ignored',
    set: [allowTo({ methods: ['GET'] })],
    request: { principal: WEB, port: 8080, protocol: 'tcp', method: 'GET', path: '/' as NormalizedPath },
    allow: false,
  },
  {
    name: 'HTTP without a path: DENY with paths matches',
    set: [denyTo({ paths: ['/admin'] })],
    request: { principal: WEB, port: 8080, protocol: 'http', method: 'GET' },
    allow: false,
  },
  {
    name: 'HTTP target not in origin form: ALLOW with paths does not match',
    set: [allowTo({ paths: ['/*'] })],
    request: http(WEB, '*', 'OPTIONS'),
    allow: false,
  },
];

describe('evaluate', () => {
  it.each(cases)('$name', (c) => {
    const decision = evaluate(policies(...c.set), c.request);
    expect(decision.allow).toBe(c.allow);
    if (c.rule !== undefined) expect(decision.rule === null ? null : ref(decision.rule)).toBe(c.rule);
    if (c.reason !== undefined) expect(decision.reason).toBe(c.reason);
    if (c.audits !== undefined) expect(decision.audits.map(ref)).toEqual(c.audits);
    if (c.dryRunDenials !== undefined) {
      expect(decision.dryRunDenials.map(ref)).toEqual(c.dryRunDenials);
      expect(decision.enforced).toBe(c.dryRunDenials.length === 0);
    }
  });

  it('reports a would-be denial with enforced false and the allow unchanged', () => {
    const set = policies(allowFrom([WEB]), { ...denyTo({ paths: ['/admin'] }), dry_run: true });
    const decision: Decision = evaluate(set, http(WEB, '/admin'));
    expect(decision).toEqual({
      allow: true,
      enforced: false,
      rule: { policy: 'allow', index: 0, action: 'ALLOW' },
      reason: 'policy "allow" rule #0 (ALLOW) matched',
      audits: [],
      dryRunDenials: [{ policy: 'deny', index: 0, action: 'DENY' }],
    });
  });
});

describe('evaluate properties', () => {
  const principal = fc.constantFrom(WEB, BATCH, OTHER_TD, 'spiffe://example.org/ns/web', null);
  const principalPattern = fc.constantFrom(
    '*',
    WEB,
    BATCH,
    'spiffe://example.org',
    'spiffe://example.org/ns/*',
    'spiffe://other.org/*',
  );
  const port = fc.constantFrom(80, 8080, 9090);
  const method = fc.constantFrom('GET', 'POST', 'DELETE');
  const path = fc.constantFrom<NormalizedPath[]>(
    ...(['/', '/api', '/api/v1', '/admin/x', '/u/1/edit'] as NormalizedPath[]),
  );
  const pathPattern = fc.constantFrom('/', '/api/*', '/admin', '/u/*/edit', '/**', '/api');
  const list = <T>(arb: fc.Arbitrary<T>) =>
    fc.option(fc.uniqueArray(arb, { minLength: 1, maxLength: 3 }), { nil: undefined });
  const rule = fc
    .record({
      principals: list(principalPattern),
      not_principals: list(principalPattern),
      ports: list(port),
      methods: list(method),
      paths: list(pathPattern),
    })
    .map(({ principals, not_principals, ports, methods, paths }) => {
      const from = { ...(principals ? { principals } : {}), ...(not_principals ? { not_principals } : {}) };
      const to = {
        ...(ports ? { ports } : {}),
        ...(methods ? { methods } : {}),
        ...(paths ? { paths } : {}),
      };
      return {
        ...(Object.keys(from).length > 0 ? { from } : {}),
        ...(Object.keys(to).length > 0 ? { to } : {}),
      };
    });
  const request = fc.record({
    principal,
    port,
    protocol: fc.constantFrom<'http' | 'tcp'>('http', 'tcp'),
    method,
    path,
  });

  it('is deterministic, independent of policy order, and DENY always beats ALLOW', () => {
    fc.assert(
      fc.property(rule, rule, request, (allowRule, denyRule, req) => {
        const allowPolicy = { name: 'a', action: 'ALLOW', rules: [allowRule] };
        const denyPolicy = { name: 'd', action: 'DENY', rules: [denyRule] };
        const both = policies(allowPolicy, denyPolicy);
        const decision = evaluate(both, req);
        expect(evaluate(both, req)).toEqual(decision);
        expect(evaluate(policies(denyPolicy, allowPolicy), req)).toEqual(decision);

        const allowMatches = evaluate(policies(allowPolicy), req).rule !== null;
        const denyMatches = !evaluate(policies(denyPolicy), req).allow;
        if (denyMatches) {
          expect(decision.allow).toBe(false);
          expect(decision.rule).toEqual({ policy: 'd', index: 0, action: 'DENY' });
        } else {
          expect(decision.allow).toBe(allowMatches);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('needsRequestDetails', () => {
  it('is true only when a rule for the port names methods or paths', () => {
    expect(needsRequestDetails(policies(allowFrom([WEB])), 8080)).toBe(false);
    expect(needsRequestDetails(policies(allowTo({ ports: [8080] })), 8080)).toBe(false);
    expect(needsRequestDetails(policies(denyTo({ paths: ['/admin/*'] })), 8080)).toBe(true);
    expect(needsRequestDetails(policies(allowTo({ methods: ['GET'] })), 9090)).toBe(true);
    // Scoped to another port: this port's connections can stay opaque.
    expect(needsRequestDetails(policies(denyTo({ ports: [9090], paths: ['/x'] })), 8080)).toBe(false);
    expect(needsRequestDetails(policies(denyTo({ ports: [9090], paths: ['/x'] })), 9090)).toBe(true);
    // A dry-run or AUDIT rule reports per request, so it needs the details too.
    const audit = { name: 'watch', action: 'AUDIT', rules: [{ to: { paths: ['/x'] } }] };
    expect(needsRequestDetails(policies(audit), 8080)).toBe(true);
  });
});
