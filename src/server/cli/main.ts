// Entry point of the sigil-server CLI: picks the command, parses its flags, runs it against the
// admin API socket and maps every failure to one exit code, in one table (exitCodeOf). `run` is
// delegated untouched to run.ts, which starts the server itself.
import { unknownCommand, wantsJsonOutput } from '../../spiffe/cli-args.js';
import { isSigilError, SigilError } from '../../spiffe/errors.js';
import { helpColumns, helpParagraph } from '../../spiffe/help-layout.js';
import { describeDefaultSocket } from '../../spiffe/runtime-dir.js';
import { checkSocketForClient } from '../../spiffe/socket-dir.js';
import { closestMatch } from '../../spiffe/suggest.js';
import { terminalSafe } from '../../spiffe/text.js';
import { AdminApiError, type AdminClient, createAdminClient } from './admin-client.js';
import { COMMON_FLAGS, formatUsage, parseFlags } from './args.js';
import type { CliIo, CommandContext, CommandSpec } from './command.js';
import { agentCommands } from './commands/agent.js';
import { authorityCommands } from './commands/authority.js';
import { bundleCommands } from './commands/bundle.js';
import { entryCommands } from './commands/entry.js';
import { healthcheckCommands } from './commands/healthcheck.js';
import { svidCommands } from './commands/svid.js';
import { tokenCommands } from './commands/token.js';
import { defaultAdminSocket } from './default-admin-socket.js';
import { oneOf } from './values.js';

export type { CliIo } from './command.js';

const OUTPUT_FORMATS = ['text', 'json'] as const;

const EXIT = {
  ok: 0,
  /** The server refused the request (4xx), or its result could not be saved locally. */
  refused: 1,
  /** Bad flags or values, caught before anything was sent. */
  usage: 2,
  /** The admin socket is missing, refuses connections or does not answer. */
  unreachable: 3,
  /** The server failed (5xx) or answered something that makes no sense. */
  serverError: 4,
  /** The admin socket, or a directory on its path, could have been planted or swapped by another user. */
  unsafeSocket: 5,
} as const;

const COMMANDS: readonly CommandSpec[] = [
  ...healthcheckCommands,
  ...entryCommands,
  ...tokenCommands,
  ...agentCommands,
  ...bundleCommands,
  ...svidCommands,
  ...authorityCommands,
];

const GROUP_SUMMARIES: Readonly<Record<string, string>> = {
  entry: 'Manage registration entries.',
  token: 'Manage join tokens.',
  agent: 'Manage attested agents.',
  bundle: 'Manage the trust bundle and federated bundles.',
  x509: 'Mint X509-SVIDs.',
  jwt: 'Mint JWT-SVIDs.',
  localauthority: 'Show and rotate the CA and JWT authorities.',
};

const COMMAND_LINES: ReadonlyArray<readonly [string, string]> = [
  ['run', 'Start the server (see sigil-server run --help).'],
  ['healthcheck', 'Check that the server is alive and ready.'],
  ...Object.entries(GROUP_SUMMARIES).map(([group, summary]) => {
    const subs = COMMANDS.filter((c) => c.name.startsWith(`${group} `)).map((c) => c.name.split(' ')[1]);
    return [`${group} ${subs.join('|')}`, summary] as const;
  }),
];

const TOP_USAGE = `Usage: sigil-server <command> [flags]

Commands:
${helpColumns(COMMAND_LINES)}

Every command takes --admin-socket PATH, --output text|json (default: text) and --help.
Run "sigil-server <command> --help" for its flags. The admin socket defaults to $SIGIL_ADMIN_SOCKET,
else to where "sigil-server run" puts it for the same user:
${helpParagraph(describeDefaultSocket('serverAdmin'), 2)}

Exit codes:
  0  success
  1  the server refused the request (4xx; its error code and message are printed),
     or the result could not be saved locally (x509 mint --write)
  2  usage error: unknown or missing flag, or a bad value caught before sending
  3  cannot reach the server (is sigil-server running? check --admin-socket)
  4  server error (5xx), or the server is unhealthy (healthcheck)
  5  refused to connect: the admin socket, or a directory on its path, belongs to another user
     or is writable by others (they could answer in the server's place)
`;

/** Runs the CLI and resolves to the exit code; never throws for anything the user can cause. */
export async function main(argv: readonly string[], rawIo: CliIo = processIo()): Promise<number> {
  // Everything printed passes one escape: entries and agents hold strings from other people.
  const io: CliIo = { ...rawIo, stdout: terminalSafe(rawIo.stdout), stderr: terminalSafe(rawIo.stderr) };
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    (first === undefined ? io.stderr : io.stdout).write(TOP_USAGE);
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === 'run') return runServer(rest, io);
  const single = COMMANDS.find((c) => c.name === first);
  if (single !== undefined) return runCommand(single, rest, io);
  if (GROUP_SUMMARIES[first] === undefined) {
    const known = ['run', 'help', ...COMMANDS.map((c) => c.name.split(' ')[0]!)];
    io.stderr.write(`sigil-server: ${unknownCommand(first, [...new Set(known)])}\n\n${TOP_USAGE}`);
    return EXIT.usage;
  }
  const [sub, ...flags] = rest;
  const spec = COMMANDS.find((c) => c.name === `${first} ${sub}`);
  if (spec !== undefined) return runCommand(spec, flags, io);
  const isHelp = sub === '--help' || sub === '-h';
  if (!isHelp) {
    const subs = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name.split(' ')[1]!);
    const match = sub === undefined ? undefined : closestMatch(sub, subs);
    const hint = match === undefined ? '' : `; did you mean ${JSON.stringify(match)}?`;
    const what = sub === undefined ? 'needs a subcommand' : `has no subcommand ${JSON.stringify(sub)}${hint}`;
    io.stderr.write(`sigil-server ${first}: ${what}\n\n`);
  }
  (isHelp ? io.stdout : io.stderr).write(groupUsage(first));
  return isHelp ? EXIT.ok : EXIT.usage;
}

async function runCommand(spec: CommandSpec, argv: readonly string[], io: CliIo): Promise<number> {
  const specs = { ...spec.flags, ...COMMON_FLAGS };
  // Known before parsing, so that even a usage error comes out as JSON when JSON was asked for.
  let output: 'text' | 'json' = wantsJsonOutput(argv) ? 'json' : 'text';
  let client: AdminClient | undefined;
  try {
    const flags = parseFlags(specs, argv);
    if (flags.boolean('help')) {
      io.stdout.write(formatUsage(spec.name, spec.summary, specs));
      return EXIT.ok;
    }
    output = oneOf('output', flags.string('output'), OUTPUT_FORMATS, 'text');
    const uid = io.uid ?? process.getuid!();
    const socketPath = flags.string('admin-socket') ?? io.env['SIGIL_ADMIN_SOCKET'] ?? defaultAdminSocket(io);
    const ctx: CommandContext = {
      io,
      output,
      client: () => {
        if (client === undefined) {
          // Before the first byte: whoever could plant this socket would answer in the server's place.
          checkSocketForClient(socketPath, { uid, field: '--admin-socket' });
          client = createAdminClient(socketPath);
        }
        return client;
      },
    };
    return await spec.run(ctx, flags);
  } catch (err) {
    reportFailure(spec.name, err, output, io);
    return exitCodeOf(err);
  } finally {
    await client?.close();
  }
}

/** The one table from failure to exit code. */
function exitCodeOf(err: unknown): number {
  if (err instanceof AdminApiError) return err.status >= 500 ? EXIT.serverError : EXIT.refused;
  if (isSigilError(err, 'ERR_UNAVAILABLE')) return EXIT.unreachable;
  if (isSigilError(err, 'ERR_SOCKET_UNSAFE')) return EXIT.unsafeSocket;
  // A wait that ran out (`localauthority … --wait`): the step stays unsafe, as a refusal would say.
  if (isSigilError(err, 'ERR_AUTHORITY_STATE')) return EXIT.refused;
  if (err instanceof SigilError) return EXIT.usage;
  return EXIT.refused;
}

function reportFailure(command: string, err: unknown, output: 'text' | 'json', io: CliIo): void {
  if (output === 'json') {
    if (err instanceof AdminApiError) io.stdout.write(`${err.jsonText()}\n`);
    else {
      const code = err instanceof SigilError ? err.code : 'ERR_LOCAL';
      const field = err instanceof SigilError ? err.field?.replace(/^--/, '') : undefined;
      io.stdout.write(`${JSON.stringify({ error: { code, message: (err as Error).message, field } })}\n`);
    }
    return;
  }
  if (err instanceof AdminApiError) {
    const kind = err.status >= 500 ? 'server error' : 'server refused the request';
    const field = err.wire.field ? ` (field: ${err.wire.field})` : '';
    io.stderr.write(
      `sigil-server ${command}: ${kind}: ${err.status} ${err.wire.code}: ${err.wire.message}${field}\n`,
    );
  } else if (
    err instanceof SigilError &&
    err.code !== 'ERR_UNAVAILABLE' &&
    err.code !== 'ERR_SOCKET_UNSAFE' &&
    err.code !== 'ERR_AUTHORITY_STATE'
  ) {
    io.stderr.write(
      `sigil-server ${command}: ${err.message}\nRun "sigil-server ${command} --help" for usage.\n`,
    );
  } else {
    io.stderr.write(`sigil-server ${command}: ${(err as Error).message ?? String(err)}\n`);
  }
}

function groupUsage(group: string): string {
  const subs = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  const lines = helpColumns(subs.map((c) => [c.name, c.summary] as const));
  return `Usage: sigil-server ${group} <subcommand> [flags]\n\n${GROUP_SUMMARIES[group]}\n\nSubcommands:\n${lines}\n\nRun "sigil-server ${group} <subcommand> --help" for its flags.\n`;
}

/** Loaded only for `run`, so admin commands start without pulling in the whole server stack. */
async function runServer(args: string[], io: CliIo): Promise<number> {
  const { runCommand } = await import('./run.js');
  return runCommand(args, io);
}

function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}
