// `sigil-proxy policy check|lint`: lets an operator ask "would this request be allowed, and by
// which rule?" and vet a file before shipping it, using the very parser and evaluator the proxy
// runs. Exit codes: check 0 allowed / 1 denied; lint 0 clean or warnings only / 1 any error;
// both 2 for bad flags or a file that does not load. Only this file prints; the rest is pure.
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { quote, SigilError } from '../../spiffe/errors.js';
import { parseSpiffeId, parseTrustDomain } from '../../spiffe/id.js';
import {
  type CommandIo,
  cliJson,
  outputFormat,
  parseFlags,
  readCommandFile,
  required,
  runCommandGroup,
  usage,
} from '../command-flags.js';
import { describeRule, evaluate } from './evaluate.js';
import { type LintFinding, lintPolicySet } from './lint.js';
import type { AuthzRequest, Decision, PolicySet } from './model.js';
import {
  checkPathNormalization,
  DEFAULT_PATH_NORMALIZATION,
  normalizeRequestTarget,
  type PathNormalization,
} from './normalize.js';
import { compilePolicyDocument, parsePolicyFile } from './parse.js';
import { type InboundPorts, inboundPortsOf, portNote } from './port-note.js';

export type PolicyCliIo = CommandIo;

const EXIT = { ok: 0, refused: 1 } as const;
const POLICY_FILE_KEYS = ['policies', 'trust_domains'];

const GROUP_HELP = `Usage: sigil-proxy policy <command> [flags]

Commands:
  check   Evaluate one request against a policy and print ALLOW or DENY with the deciding rule.
  lint    Report rules that can never match, ALLOW rules shadowed by DENY rules, principals
          outside the known trust domains, duplicates, and sets that enforce nothing.

Run "sigil-proxy policy <command> --help" for its flags.
`;

const CHECK_HELP = `Usage: sigil-proxy policy check --config FILE --to-port P [flags]

Evaluates one request. Exit status: 0 allowed, 1 denied, 2 usage or config error.

Flags:
  --config FILE          a policy file, or a proxy config with policy_file (relative to it) or
                         inline policies
  --from ID              caller SPIFFE ID (default: an unauthenticated, plaintext caller)
  --to-port P            the app's port, 1-65535: the port rules' \`ports\` name, which is an
                         inbound listener's \`app\` port, not the port the proxy listens on
  --method M             HTTP method, as sent (http only)
  --path /x              HTTP request path (http only), normalized as the proxy does (the
                         config's path_normalization); a path the proxy refuses is a DENY (400)
  --protocol http|tcp    default: http
  --output text|json     default: text
  -h, --help             show this help
`;

const LINT_HELP = `Usage: sigil-proxy policy lint FILE [--trust-domain TD]... [flags]

Lints a policy file (or a proxy config, as for check). Exit status: 1 if any finding is an error,
0 if there are none or only warnings, 2 for a usage error or a file that does not load.

Flags:
  --trust-domain TD      a known trust domain, besides the file's trust_domains (repeatable)
  --output text|json     default: text
  -h, --help             show this help
`;

export function policyCommand(args: readonly string[], io: PolicyCliIo): Promise<number> {
  return runCommandGroup('policy', { check: checkCommand, lint: lintCommand }, GROUP_HELP, args, io);
}

async function checkCommand(args: readonly string[], io: PolicyCliIo): Promise<number> {
  const flags = parseFlags(args, {
    config: { type: 'string' },
    from: { type: 'string' },
    'to-port': { type: 'string' },
    method: { type: 'string' },
    path: { type: 'string' },
    protocol: { type: 'string' },
    output: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.values.help) {
    io.stdout.write(CHECK_HELP);
    return EXIT.ok;
  }
  if (flags.positionals.length > 0) throw usage(`unexpected argument ${quote(flags.positionals[0])}`);
  const output = outputFormat(flags.values.output);
  const configFile = required(flags.values.config, '--config FILE');
  const portText = required(flags.values['to-port'], '--to-port P');
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65_535) {
    throw usage(`--to-port: must be a port number from 1 to 65535 (got ${quote(portText)})`);
  }
  const protocol = flags.values.protocol ?? 'http';
  if (protocol !== 'http' && protocol !== 'tcp') {
    throw usage(`--protocol: must be http or tcp (got ${quote(protocol)})`);
  }
  const { method, path: requestPath } = flags.values;
  if (protocol === 'tcp' && (method !== undefined || requestPath !== undefined)) {
    throw usage('--method and --path apply to http only (opaque TCP has neither)');
  }
  if (requestPath !== undefined && !requestPath.startsWith('/')) {
    throw usage(`--path: must start with "/" (got ${quote(requestPath)})`);
  }
  const from = flags.values.from;
  // Validated here so a typo is a usage error rather than a silent "unauthenticated" caller.
  const principal = from === undefined ? null : parseSpiffeId(from, '--from').toString();
  const { set, pathNormalization, inbound } = await loadPolicySet(configFile);
  // A port no rule names is most often the listener's port given for the app's: say so.
  const note = portNote(set, port, inbound, configFile);
  const noted = note === undefined ? {} : { note };
  // The proxy decides on the normalized path and forwards that very path; so does this.
  const target =
    requestPath === undefined ? undefined : normalizeRequestTarget(requestPath, pathNormalization);
  if (target !== undefined && !target.ok) {
    const refusal = { allow: false, status: 400, refusal: target.reason, reason: target.message };
    io.stdout.write(
      output === 'json'
        ? cliJson({ request: { principal, port, protocol, method, path: requestPath }, ...refusal, ...noted })
        : `DENY\n  400 bad request: ${target.message}\n${note === undefined ? '' : `  note: ${note}\n`}`,
    );
    return EXIT.refused;
  }
  const request: AuthzRequest = {
    principal,
    port,
    protocol,
    ...(method !== undefined ? { method } : {}),
    ...(target !== undefined ? { path: target.path } : {}),
  };
  const decision = evaluate(set, request);
  // Say so when the path decided on is not the one given (the query aside, which is never matched).
  const isRewritten = target !== undefined && target.target !== requestPath;
  const normalized = isRewritten ? { normalized_from: requestPath } : {};
  io.stdout.write(
    output === 'json'
      ? cliJson({ request, ...normalized, ...decision, ...noted })
      : formatDecision(
          decision,
          isRewritten ? { path: request.path ?? null, from: requestPath! } : undefined,
          note,
        ),
  );
  return decision.allow ? EXIT.ok : EXIT.refused;
}

async function lintCommand(args: readonly string[], io: PolicyCliIo): Promise<number> {
  const flags = parseFlags(args, {
    'trust-domain': { type: 'string', multiple: true },
    output: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.values.help) {
    io.stdout.write(LINT_HELP);
    return EXIT.ok;
  }
  const output = outputFormat(flags.values.output);
  if (flags.positionals.length !== 1) {
    throw usage(
      flags.positionals.length === 0 ? 'missing FILE' : `unexpected argument ${quote(flags.positionals[1])}`,
    );
  }
  const trustDomains = (flags.values['trust-domain'] ?? []).map(
    (td) => parseTrustDomain(td, '--trust-domain').name,
  );
  const { set } = await loadPolicySet(flags.positionals[0]!);
  const findings = lintPolicySet(set, { trustDomains });
  io.stdout.write(output === 'json' ? cliJson({ findings }) : formatFindings(findings));
  return findings.some((f) => f.severity === 'error') ? EXIT.refused : EXIT.ok;
}

interface LoadedPolicy {
  readonly set: PolicySet;
  /** A proxy config's `path_normalization`; the defaults for a bare policy file. */
  readonly pathNormalization: PathNormalization;
  /** A proxy config's inbound listeners, for the port note; none for a bare policy file. */
  readonly inbound: readonly InboundPorts[];
}

/**
 * Loads a policy file, or a proxy config pointing at one (`policy_file`, relative to the config)
 * or embedding `policies`. A document with `policies` and keys a policy file does not have is
 * taken for a proxy config; of its other keys only `path_normalization` is read here, the rest
 * are the proxy config loader's to check.
 */
async function loadPolicySet(file: string): Promise<LoadedPolicy> {
  const text = await readCommandFile(file);
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch {
    // parsePolicyFile below reports the YAML error in the usual words.
    return { set: parsePolicyFile(text, file), pathNormalization: DEFAULT_PATH_NORMALIZATION, inbound: [] };
  }
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    const doc = raw as Record<string, unknown>;
    const problems: string[] = [];
    const pathNormalization = checkPathNormalization(doc.path_normalization, 'path_normalization', problems);
    if (problems.length > 0) {
      throw new SigilError('ERR_CONFIG_INVALID', `${file}: ${problems.join('; ')}`, {
        field: 'path_normalization',
      });
    }
    const set = await loadFromConfig(file, doc);
    return { set, pathNormalization, inbound: inboundPortsOf(doc) };
  }
  return {
    set: compilePolicyDocument(raw, file),
    pathNormalization: DEFAULT_PATH_NORMALIZATION,
    inbound: [],
  };
}

/** The policy set a mapping document names: its `policy_file`, its inline `policies`, or itself. */
async function loadFromConfig(file: string, doc: Record<string, unknown>): Promise<PolicySet> {
  if (doc.policy_file !== undefined) {
    if (typeof doc.policy_file !== 'string' || doc.policy_file === '') {
      throw new SigilError(
        'ERR_CONFIG_INVALID',
        `${file}: policy_file: must be a file path (got ${quote(doc.policy_file)})`,
        { field: 'policy_file' },
      );
    }
    const policyFile = path.resolve(path.dirname(file), doc.policy_file);
    return parsePolicyFile(await readCommandFile(policyFile), policyFile);
  }
  if (doc.policies !== undefined && Object.keys(doc).some((k) => !POLICY_FILE_KEYS.includes(k))) {
    const inline = Object.fromEntries(Object.entries(doc).filter(([k]) => POLICY_FILE_KEYS.includes(k)));
    return compilePolicyDocument(inline, `${file} (inline policies)`);
  }
  return compilePolicyDocument(doc, file);
}

function formatDecision(
  decision: Decision,
  rewrite: { path: string | null; from: string } | undefined,
  note: string | undefined,
): string {
  const lines = [decision.allow ? 'ALLOW' : 'DENY', `  ${decision.reason}`];
  if (rewrite !== undefined) {
    lines.push(`  path: ${JSON.stringify(rewrite.path)} (normalized from ${JSON.stringify(rewrite.from)})`);
  }
  for (const d of decision.dryRunDenials) {
    lines.push(`  dry-run: ${describeRule(d)} would deny${d.index === null ? ' (no rule matched)' : ''}`);
  }
  for (const a of decision.audits) lines.push(`  audit: ${describeRule(a)} matched`);
  if (note !== undefined) lines.push(`  note: ${note}`);
  return `${lines.join('\n')}\n`;
}

function formatFindings(findings: readonly LintFinding[]): string {
  if (findings.length === 0) return 'no findings\n';
  const lines = findings.map((f) => {
    const rule = f.rule === undefined ? '' : ` rule #${f.rule}`;
    const where = f.policy === null ? '(policy set)' : `policy ${JSON.stringify(f.policy)}${rule}`;
    return `${f.severity.padEnd(7)} ${where}: ${f.message} [${f.code}]`;
  });
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.length - errors;
  lines.push(
    `${errors} ${errors === 1 ? 'error' : 'errors'}, ${warnings} ${warnings === 1 ? 'warning' : 'warnings'}`,
  );
  return `${lines.join('\n')}\n`;
}
