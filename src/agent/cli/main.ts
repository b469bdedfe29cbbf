// Entry point of the sigil-agent CLI: `run` starts the agent; `api …` talks to the Workload API like
// a workload would; `healthcheck` and `debug explain` use the agent's admin socket.
// Exit codes: 0 ok, 1 refused / unhealthy, 2 usage or config error, 3 agent unreachable,
// 5 socket refused as unsafe (another user could have planted it).
import http from 'node:http';
import { Registry } from 'prom-client';
import {
  errorJson,
  parseCliArgs,
  unknownCommand,
  usageError,
  wantsJsonOutput,
} from '../../spiffe/cli-args.js';
import { holdProcessOpen, systemClock } from '../../spiffe/clock.js';
import { isSigilError, quote, SigilError } from '../../spiffe/errors.js';
import { helpColumns, helpParagraph } from '../../spiffe/help-layout.js';
import { defaultSocketPath, describeDefaultSocket } from '../../spiffe/runtime-dir.js';
import { untilStopSignal } from '../../spiffe/shutdown.js';
import { checkSocketForClient } from '../../spiffe/socket-dir.js';
import { terminalSafe } from '../../spiffe/text.js';
import { startAgent } from '../agent.js';
import { DEFAULT_AGENT_DATA_DIR, LOG_LEVELS, loadAgentConfig } from '../config.js';
import { createAgentLogger } from '../logger.js';
import { createAgentMetrics } from '../metrics.js';
import { apiCommand, EXIT_UNSAFE_SOCKET, runtimeOf } from './api.js';

export interface AgentCliIo {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The invoking user, whose sockets (and root's) the CLI trusts; defaults to this process's uid. */
  readonly uid?: number;
}

const COMMAND_ROWS: ReadonlyArray<readonly [string, string]> = [
  ['run', 'attest this node and serve the SPIFFE Workload API'],
  ['api fetch x509', "fetch this process's X.509-SVIDs (--write DIR to save them)"],
  ['api fetch jwt', 'fetch a JWT-SVID (--audience A)'],
  ['api validate jwt', 'validate a JWT-SVID (--audience A --svid TOKEN)'],
  ['api watch', 'print every X.509-SVID update (rotations) until interrupted'],
  ['healthcheck', '0 when the agent is healthy, 1 with the reasons when not (--admin-socket PATH)'],
  ['debug explain --pid P', 'why a process gets (or does not get) an identity'],
];

const USAGE = `Usage: sigil-agent <command> [flags]

Commands:
${helpColumns(COMMAND_ROWS)}

Run "sigil-agent <command> --help" for the flags of a command.
Exit codes: 0 ok, 1 refused or unhealthy, 2 usage or config error, 3 agent unreachable,
5 refused to connect: the socket, or a directory on its path, belongs to another user or is
writable by others.
With --output json, errors are printed on stdout as {"error":{"code","message","field"}}.
`;

const RUN_FLAG_ROWS: ReadonlyArray<readonly [string, string]> = [
  ['--config FILE', 'YAML or JSON config file'],
  ['--server-address HOST:PORT', 'sigil-server agent API; repeat for several servers [server_address]'],
  ['--trust-domain NAME', 'trust domain [trust_domain]'],
  [
    '--trust-bundle-path FILE',
    'bundle (PEM or SPIFFE JSON) to trust the server on first contact [trust_bundle_path]',
  ],
  [
    '--insecure-bootstrap',
    'trust the server on first contact without a bundle (demos only) [insecure_bootstrap]',
  ],
  ['--join-token TOKEN', 'attest with a join token [join_token]'],
  [
    '--data-dir DIR',
    `where the agent SVID, key and bundle are kept (default ${DEFAULT_AGENT_DATA_DIR}) [data_dir]`,
  ],
  [
    '--socket-path PATH',
    `Workload API socket [socket_path], default ${describeDefaultSocket('workloadApi')}`,
  ],
  ['--admin-socket PATH', `admin socket [admin_socket], default ${describeDefaultSocket('agentAdmin')}`],
  ['--log-level LEVEL', `${LOG_LEVELS.join('|')} (default info) [log_level]`],
  [
    '--metrics-bind HOST:PORT',
    'serve GET /metrics (Prometheus, plain HTTP) there; off by default [metrics_bind]',
  ],
  ['-h, --help', 'show this help'],
];

const RUN_FLAGS = {
  config: { type: 'string' },
  'server-address': { type: 'string', multiple: true },
  'trust-domain': { type: 'string' },
  'trust-bundle-path': { type: 'string' },
  'insecure-bootstrap': { type: 'boolean' },
  'join-token': { type: 'string' },
  'data-dir': { type: 'string' },
  'socket-path': { type: 'string' },
  'admin-socket': { type: 'string' },
  'log-level': { type: 'string' },
  'metrics-bind': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const ADMIN_FLAGS = {
  'admin-socket': { type: 'string' },
  output: { type: 'string' },
  pid: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const RUN_USAGE = `Usage: sigil-agent run [flags]

Flags (each overrides the config file key in brackets):
${helpColumns(RUN_FLAG_ROWS)}

${helpParagraph(
  'Config-only keys: node_attestor ({x509pop: {...}} or {k8s_sat: {...}}), workload_attestors ' +
    '({unix: {}}), svid_cache_max (10000), svid_store (disk|memory, default disk), reconcile_interval (5m).',
)}

${helpParagraph('Exit codes: 0 stopped by SIGINT or SIGTERM, 1 failed to start, 2 usage or config error (an address or socket path that cannot be listened on included: the message names the setting).')}
`;

const COMMANDS = ['run', 'api', 'healthcheck', 'debug'];

export async function main(argv: string[], rawIo: AgentCliIo = process): Promise<number> {
  // Everything printed passes one escape: IDs, paths and errors can carry text from other people.
  const io: AgentCliIo = { ...rawIo, stdout: terminalSafe(rawIo.stdout), stderr: terminalSafe(rawIo.stderr) };
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return run(rest, io);
    case 'api':
      return apiCommand(rest, io);
    case 'healthcheck':
      return adminCall('healthcheck', rest, io, () => '/healthz');
    case 'debug':
      if (rest[0] !== 'explain') {
        const what = rest[0] === undefined ? 'missing command' : unknownCommand(rest[0], ['explain']);
        const problem = `debug: ${what} (try: debug explain --pid P)`;
        return usage(io, problem, wantsJsonOutput(rest));
      }
      return adminCall('debug explain', rest.slice(1), io, (values) => {
        if (!values.pid) throw usageError('--pid is required', 'pid');
        return `/debug/explain?pid=${encodeURIComponent(values.pid)}`;
      });
    case undefined:
    case '-h':
    case '--help':
      io.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      return usage(io, unknownCommand(command, COMMANDS), wantsJsonOutput(rest));
  }
}

async function run(args: string[], io: AgentCliIo): Promise<number> {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    values = parseCliArgs(args, RUN_FLAGS, false).values;
  } catch (err) {
    io.stderr.write(`sigil-agent run: ${(err as Error).message}\nRun "sigil-agent run --help" for usage.\n`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(RUN_USAGE);
    return 0;
  }
  const str = (key: string) => values[key] as string | undefined;
  const runtime = runtimeOf(io);
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try {
    const config = loadAgentConfig(
      {
        config: str('config'),
        serverAddress: values['server-address'] as string[] | undefined,
        trustDomain: str('trust-domain'),
        trustBundlePath: str('trust-bundle-path'),
        insecureBootstrap: values['insecure-bootstrap'] as boolean | undefined,
        joinToken: str('join-token'),
        dataDir: str('data-dir'),
        socketPath: str('socket-path'),
        adminSocket: str('admin-socket'),
        logLevel: str('log-level'),
        metricsBind: str('metrics-bind'),
      },
      process.cwd(),
      // The same defaults `healthcheck`, `debug explain` and `api` compute for this user.
      {
        socketPath: defaultSocketPath('workloadApi', runtime),
        adminSocket: defaultSocketPath('agentAdmin', runtime),
      },
    );
    const registry = new Registry();
    const metrics = createAgentMetrics(registry, systemClock);
    const logger = createAgentLogger(config.logLevel, (component) => metrics.loggedError(component));
    if (config.insecureBootstrap) {
      io.stderr.write(
        'sigil-agent: WARNING --insecure-bootstrap trusts whatever server answers first. Use --trust-bundle-path outside demos.\n',
      );
    }
    // Startup may wait for the server (first attestation) on unref'd timers only.
    const release = holdProcessOpen();
    try {
      agent = await startAgent(config, { logger, uid: runtime.uid, telemetry: { registry, metrics } });
    } finally {
      release();
    }
  } catch (err) {
    io.stderr.write(
      `sigil-agent run: ${isSigilError(err) ? err.message : ((err as Error).stack ?? String(err))}\n`,
    );
    return isSigilError(err, 'ERR_CONFIG_INVALID') ? 2 : 1;
  }
  await untilStopSignal();
  await agent.close();
  return 0;
}

async function adminCall(
  name: string,
  args: string[],
  io: AgentCliIo,
  pathFor: (values: { pid?: string }) => string,
): Promise<number> {
  // Known before parsing, so that a script asking for JSON gets even a usage error as JSON.
  const json = wantsJsonOutput(args);
  let values: { 'admin-socket'?: string; output?: string; pid?: string; help?: boolean };
  let requestPath: string;
  try {
    values = parseCliArgs(args, ADMIN_FLAGS, false).values;
    if (values.help) {
      io.stdout.write(
        `Usage: sigil-agent ${name} [--admin-socket PATH] [--output text|json]${name === 'debug explain' ? ' --pid P' : ''}\n` +
          `  --admin-socket defaults to $SIGIL_AGENT_ADMIN_SOCKET, else to where "sigil-agent run" puts it:\n` +
          `${helpParagraph(describeDefaultSocket('agentAdmin'), 2)}\n`,
      );
      return 0;
    }
    if (values.output !== undefined && values.output !== 'text' && values.output !== 'json') {
      throw usageError(`--output must be "text" or "json" (got ${quote(values.output)})`, 'output');
    }
    requestPath = pathFor(values);
  } catch (err) {
    return usage(io, err, json, name);
  }
  const runtime = runtimeOf(io);
  const socketPath =
    values['admin-socket'] ?? io.env.SIGIL_AGENT_ADMIN_SOCKET ?? defaultSocketPath('agentAdmin', runtime);
  try {
    // Before the first byte: whoever could plant this socket would answer in the agent's place.
    checkSocketForClient(socketPath, { uid: runtime.uid, field: '--admin-socket' });
  } catch (err) {
    if (json) io.stdout.write(errorJson(err));
    else io.stderr.write(`sigil-agent ${name}: ${(err as Error).message}\n`);
    return isSigilError(err, 'ERR_SOCKET_UNSAFE') ? EXIT_UNSAFE_SOCKET : 3;
  }
  let reply: { status: number; body: Record<string, unknown> };
  try {
    reply = await getJson(socketPath, requestPath);
  } catch (err) {
    const problem = new SigilError(
      'ERR_UNAVAILABLE',
      `cannot reach the agent at ${socketPath}: ${(err as Error).message} (is sigil-agent running? check --admin-socket)`,
      { field: 'admin-socket', cause: err },
    );
    if (json) io.stdout.write(errorJson(problem));
    else io.stderr.write(`sigil-agent ${name}: ${problem.message}\n`);
    return 3;
  }
  if (name === 'healthcheck' && reply.status === 503 && !json) {
    io.stderr.write(formatUnhealthy(reply.body));
    return 1;
  }
  if (json || reply.status !== 200) {
    // JSON asked for goes to stdout whatever the answer; a raw non-200 answer in text mode is an error.
    (json ? io.stdout : io.stderr).write(`${JSON.stringify(reply.body)}\n`);
    return reply.status === 200 ? 0 : 1;
  }
  io.stdout.write(name === 'healthcheck' ? formatHealth(reply.body) : formatExplain(reply.body));
  return 0;
}

function formatHealth(body: Record<string, unknown>): string {
  const warnings = Array.isArray(body.warnings) ? (body.warnings as string[]) : [];
  return `Agent is healthy${body.status === 'degraded' ? ' (degraded)' : ''}: ${body.agent_id} (server ${body.server_connected ? 'connected' : 'unreachable; serving cached SVIDs'}, ${body.entries} entries, revision ${body.revision})\n${warnings.map((w) => `  warning: ${w}\n`).join('')}`;
}

function formatUnhealthy(body: Record<string, unknown>): string {
  const list = (value: unknown) => (Array.isArray(value) ? (value as string[]) : []);
  return `Agent is unhealthy: ${body.agent_id}\n${list(body.reasons)
    .map((r) => `  ${r}\n`)
    .join('')}${list(body.warnings)
    .map((w) => `  warning: ${w}\n`)
    .join('')}`;
}

interface ExplainBody {
  pid: number;
  uid: number;
  gid: number;
  selectors: string[];
  matching: Array<{ entry_id: string; spiffe_id: string; minted: boolean; expires_at?: number }>;
  near_matches: Array<{ entry_id: string; spiffe_id: string; missing: string[] }>;
}

function formatExplain(raw: Record<string, unknown>): string {
  const body = raw as unknown as ExplainBody;
  const lines = [`Process ${body.pid} (uid ${body.uid}, gid ${body.gid})`, 'Selectors attested:'];
  for (const s of body.selectors) lines.push(`  ${s}`);
  lines.push(
    body.matching.length > 0 ? 'Matching entries:' : 'Matching entries: none — this process gets no identity',
  );
  for (const m of body.matching) {
    const svid = m.minted
      ? `SVID minted, expires ${new Date((m.expires_at ?? 0) * 1000).toISOString()}`
      : 'synced, SVID not minted yet';
    lines.push(`  ${m.spiffe_id} (entry ${m.entry_id}): ${svid}`);
  }
  if (body.near_matches.length > 0) lines.push('Entries that nearly match:');
  for (const n of body.near_matches)
    lines.push(`  ${n.spiffe_id} (entry ${n.entry_id}) lacks: ${n.missing.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

function getJson(
  socketPath: string,
  requestPath: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ socketPath, path: requestPath, timeout: 15_000 }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => {
        text += chunk;
      });
      response.on('end', () => {
        try {
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
        } catch (err) {
          reject(err);
        }
      });
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

/** A usage problem: exit 2, printed as the JSON error line when --output json was asked for. */
function usage(io: AgentCliIo, problem: unknown, json: boolean, command?: string): number {
  const err = typeof problem === 'string' ? usageError(problem) : problem;
  if (json) io.stdout.write(errorJson(err));
  else if (command !== undefined) {
    io.stderr.write(
      `sigil-agent ${command}: ${(err as Error).message}\nRun "sigil-agent ${command} --help" for usage.\n`,
    );
  } else io.stderr.write(`sigil-agent: ${(err as Error).message}\n\n${USAGE}`);
  return 2;
}
