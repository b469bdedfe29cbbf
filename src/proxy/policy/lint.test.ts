import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type LintFinding, lintPolicySet } from './lint.js';
import { parsePolicyFile } from './parse.js';

const WEB = 'spiffe://example.org/ns/web';

function lint(policies: object[], options: { trustDomains?: string[]; fileTrustDomains?: string[] } = {}) {
  const doc = { ...(options.fileTrustDomains ? { trust_domains: options.fileTrustDomains } : {}), policies };
  return lintPolicySet(parsePolicyFile(stringify(doc), 'p.yaml'), { trustDomains: options.trustDomains });
}

const brief = (f: LintFinding) => `${f.severity} ${f.code} ${f.policy ?? '-'}#${f.rule ?? '-'}`;

/** A set that draws no findings, so each case adds exactly the finding it is about. */
const CLEAN = {
  name: 'allow-web',
  action: 'ALLOW',
  rules: [{ from: { principals: [`${WEB}/*`] }, to: { ports: [8080], paths: ['/api/*'] } }],
};

describe('lintPolicySet', () => {
  it('finds nothing in a clean set', () => {
    expect(
      lint([
        CLEAN,
        { name: 'deny-x', action: 'DENY', rules: [{ from: { principals: ['spiffe://example.org/ns/x'] } }] },
      ]),
    ).toEqual([]);
  });

  describe('rules that can never match', () => {
    it('reports principals all excluded by the same rule', () => {
      const findings = lint([
        CLEAN,
        {
          name: 'dead',
          action: 'DENY',
          rules: [{ from: { principals: [`${WEB}/a`, `${WEB}/b/*`], not_principals: [`${WEB}/*`] } }],
        },
      ]);
      expect(findings.map(brief)).toEqual(['error never-matches dead#0']);
      expect(findings[0]!.message).toBe(
        'can never match: not_principals exclude every one of its principals',
      );
    });

    it('does not report principals only partly excluded', () => {
      const findings = lint([
        CLEAN,
        {
          name: 'ok',
          action: 'DENY',
          rules: [
            {
              from: {
                principals: ['spiffe://example.org/db/*'],
                not_principals: ['spiffe://example.org/db/a'],
              },
            },
          ],
        },
      ]);
      expect(findings).toEqual([]);
    });

    it.each([
      ['/a//b', 'empty segments'],
      ['/a/../b', '".."'],
      ['/a/./*', '"."'],
      ['/a/', 'trailing "/"'],
      ['/%61dmin', 'percent-decoded'],
      ['/a%2fb', 'upper case'],
      ['/a{id}', 'percent-encoded'],
    ])('reports path %s', (path, why) => {
      const findings = lint([
        { ...CLEAN, rules: [{ ...CLEAN.rules[0], to: { ports: [8080], paths: ['/ok', path] } }] },
      ]);
      expect(findings.map(brief)).toEqual(['error never-matches allow-web#0']);
      expect(findings[0]!.message).toContain(`path ${JSON.stringify(path)} can never match`);
      expect(findings[0]!.message).toContain(why);
    });

    it('warns about a method outside the HTTP set', () => {
      const findings = lint([
        { ...CLEAN, rules: [{ ...CLEAN.rules[0], to: { ports: [8080], methods: ['GET', 'FETCH'] } }] },
      ]);
      expect(findings.map(brief)).toEqual(['warning nonstandard-method allow-web#0']);
      expect(findings[0]!.message).toContain('"FETCH" is not a standard HTTP method');
    });
  });

  describe('absurd path patterns', () => {
    const withPaths = (action: string, paths: string[]) => [
      CLEAN,
      { name: 'p', action, rules: [{ from: { principals: [WEB] }, to: { ports: [8080], paths } }] },
    ];
    const pathFindings = (action: string, paths: string[]) =>
      lint(withPaths(action, paths)).filter((f) => f.policy === 'p' && f.code !== 'overlap');

    it('warns about adjacent "**" and about more than two', () => {
      const findings = pathFindings('DENY', ['/**/**/**/**/**/**/**/**/**/**/z']);
      expect(findings.map(brief)).toEqual(['warning redundant-wildcard p#0', 'warning many-wildcards p#0']);
      expect(findings[0]!.message).toBe(
        'path "/**/**/**/**/**/**/**/**/**/**/z": adjacent "**" segments match exactly what one "**" does',
      );
      expect(findings[1]!.message).toContain(
        'has 10 "**" segments; more than 2 is almost certainly a mistake',
      );
      expect(pathFindings('DENY', ['/a/**/*']).map(brief)).toEqual(['warning redundant-wildcard p#0']);
      expect(pathFindings('DENY', ['/a/**/b/**/c', '/a/*/b/*'])).toEqual([]);
    });

    it('warns about a pattern that matches every path, saying what it does to TCP', () => {
      const allow = pathFindings('ALLOW', ['/api/*', '/**']);
      expect(allow.map(brief)).toEqual(['warning matches-every-path p#0']);
      expect(allow[0]!.message).toBe(
        'path "/**" matches every request path: the same as omitting paths, except that a rule with paths never matches opaque TCP (omit paths to match it too)',
      );
      const deny = pathFindings('DENY', ['/*']);
      expect(deny.map((f) => f.message)).toEqual([
        'path "/*" matches every request path: the same as omitting paths',
      ]);
      expect(pathFindings('DENY', ['/**/**']).map(brief)).toEqual([
        'warning redundant-wildcard p#0',
        'warning matches-every-path p#0',
      ]);
    });
  });

  describe('overlapping ALLOW and DENY', () => {
    it('reports an ALLOW rule a DENY rule fully covers as dead', () => {
      const findings = lint([
        {
          name: 'allow',
          action: 'ALLOW',
          rules: [
            {
              from: { principals: [`${WEB}/frontend`] },
              to: { ports: [8080], methods: ['GET'], paths: ['/api/users'] },
            },
          ],
        },
        {
          name: 'deny',
          action: 'DENY',
          rules: [
            {
              from: { principals: ['spiffe://example.org/ns/*'] },
              to: { ports: [8080, 9090], paths: ['/api/*'] },
            },
          ],
        },
      ]);
      expect(findings.map(brief)).toEqual(['error shadowed-allow allow#0']);
      expect(findings[0]!.message).toBe(
        'can never take effect: policy "deny" rule #0 (DENY) matches every request this rule does',
      );
    });

    it('reports a fully covered ALLOW as a warning when the DENY is dry-run', () => {
      const findings = lint([
        CLEAN,
        { name: 'deny', action: 'DENY', dry_run: true, rules: [{ from: { principals: ['*'] } }] },
      ]);
      expect(findings.map(brief)).toEqual(['warning shadowed-allow allow-web#0']);
    });

    it('does not call an ALLOW dead when the DENY excludes some of its callers', () => {
      const findings = lint([
        CLEAN,
        {
          name: 'deny',
          action: 'DENY',
          rules: [{ from: { principals: ['*'], not_principals: [`${WEB}/trusted`] } }],
        },
      ]);
      expect(findings.map(brief)).toEqual(['warning overlap allow-web#0']);
    });

    it('warns about a partial overlap', () => {
      const findings = lint([
        CLEAN,
        { name: 'deny', action: 'DENY', rules: [{ to: { ports: [8080], paths: ['/api/admin/*'] } }] },
      ]);
      expect(findings.map(brief)).toEqual(['warning overlap allow-web#0']);
      expect(findings[0]!.message).toBe(
        'partly overlaps policy "deny" rule #0 (DENY): requests matching both are denied',
      );
    });

    it('finds no overlap across disjoint ports, methods or paths', () => {
      const findings = lint([
        CLEAN,
        { name: 'd1', action: 'DENY', rules: [{ to: { ports: [9090] } }] },
        { name: 'd2', action: 'DENY', rules: [{ to: { ports: [8080], paths: ['/admin/*'] } }] },
        { name: 'd3', action: 'DENY', rules: [{ from: { principals: ['spiffe://example.org/ns/db'] } }] },
      ]);
      expect(findings).toEqual([]);
    });
  });

  describe('principals outside the known trust domains', () => {
    const policy = {
      name: 'allow',
      action: 'ALLOW',
      rules: [
        { from: { principals: ['spiffe://exmple.org/ns/web', '*'], not_principals: ['spiffe://evil.org'] } },
      ],
    };

    it('uses the file trust_domains', () => {
      const findings = lint([policy], { fileTrustDomains: ['example.org'] });
      expect(findings.map(brief)).toEqual([
        'error unknown-trust-domain allow#0',
        'warning unknown-trust-domain allow#0',
      ]);
      expect(findings[0]!.message).toBe(
        'principal "spiffe://exmple.org/ns/web" is outside the known trust domains (example.org)',
      );
    });

    it('uses the trust domains passed in, in either form', () => {
      const findings = lint([policy], { trustDomains: ['spiffe://example.org', 'evil.org'] });
      expect(findings.map(brief)).toEqual(['error unknown-trust-domain allow#0']);
    });

    it('says nothing when no trust domain is known', () => {
      expect(lint([policy])).toEqual([]);
    });
  });

  it('reports duplicate rules within and across policies of the same action', () => {
    const rule = { from: { principals: [WEB] }, to: { ports: [80, 8080] } };
    const reordered = { to: { ports: [8080, 80] }, from: { principals: [WEB] } };
    const findings = lint([
      { name: 'a', action: 'ALLOW', rules: [rule, reordered] },
      { name: 'b', action: 'ALLOW', rules: [rule] },
      { name: 'c', action: 'AUDIT', rules: [rule] },
    ]);
    expect(findings.map(brief)).toEqual(['warning duplicate-rule a#1', 'warning duplicate-rule b#0']);
    expect(findings[0]!.message).toBe('duplicates policy "a" rule #0 (ALLOW)');
  });

  it('warns that a DENY with paths and no ports blocks opaque TCP', () => {
    const findings = lint([{ name: 'deny', action: 'DENY', rules: [{ to: { paths: ['/admin'] } }] }]);
    expect(findings.map(brief)).toEqual(['warning deny-blocks-tcp deny#0']);
  });

  it('warns that an ALLOW without principals admits unauthenticated callers', () => {
    const findings = lint([
      { name: 'allow', action: 'ALLOW', rules: [{ from: { not_principals: ['spiffe://evil.org'] } }] },
    ]);
    expect(findings.map(brief)).toEqual(['warning allows-unauthenticated allow#0']);
  });

  it.each([
    ['no-policies', []],
    ['audit-only', [{ name: 'a', action: 'AUDIT', rules: [{}] }]],
    [
      'all-dry-run',
      [
        { ...CLEAN, dry_run: true },
        { name: 'a', action: 'AUDIT', rules: [{}] },
      ],
    ],
  ])('warns about a set that enforces nothing: %s', (code, policies) => {
    expect(lint(policies).map(brief)).toEqual([`warning ${code} -#-`]);
  });
});
