// Entry point of sigil-mesh (`npm start` runs `sigil-mesh up`): flags, output format, signals.
// The only file of src/mesh that reads argv, the environment and the process's uid.
// Exit codes: 0 stopped cleanly (Ctrl-C / SIGTERM), 1 a component failed, 2 usage error, a port in
// use or the mesh directory held by another sigil-mesh.
import { fileURLToPath } from 'node:url';
import { parseCliArgs, unknownCommand } from '../spiffe/cli-args.js';
import { systemClock } from '../spiffe/clock.js';
import { quote } from '../spiffe/errors.js';
import { terminalSafe } from '../spiffe/text.js';
import { DEFAULT_BASE_PORT, PORT_COUNT } from './layout.js';
import { jsonReporter, type Sink, textReporter } from './reporter.js';
import { runMesh } from './up.js';

export interface MeshCliIo {
  readonly stdout: Sink;
  readonly stderr: Sink;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

const USAGE = `Usage: sigil-mesh up [--dir DIR] [--base-port N] [--output text|json]

Starts a whole Sigil mesh on this machine and keeps it running until Ctrl-C: a server for the trust
domain sigil.local (SQLite, self-signed CA), a join token, an agent attested with it, two demo
services (frontend, backend), each behind a sigil-proxy sidecar, and a policy that lets frontend
call backend but not the reverse. Prints what to try once everything is up.

Flags:
  --dir DIR          where everything is kept, in DIR/mesh (default .sigil); a second run reuses it
  --base-port N      first of the ${PORT_COUNT} consecutive ports the mesh listens on, all on 127.0.0.1
                     (default ${DEFAULT_BASE_PORT}: ${DEFAULT_BASE_PORT}-${DEFAULT_BASE_PORT + PORT_COUNT - 1})
  --output text|json text (default), or one JSON object per line: progress, "ready" with every URL,
                     command and pid, then "stopped"
  -h, --help         show this help

Exit codes: 0 stopped by Ctrl-C or SIGTERM, 1 a component failed (its log is shown),
2 usage error, a port in use, or DIR held by another sigil-mesh.
`;

const BIN_DIR = fileURLToPath(new URL('../../../bin/', import.meta.url));
const DEMO_APP = fileURLToPath(new URL('./demo-app-main.js', import.meta.url));

export async function main(
  argv: string[],
  rawIo: MeshCliIo = { ...process, cwd: process.cwd() },
): Promise<number> {
  // Component logs are shown on failure: they pass one escape before reaching a terminal.
  const io = { ...rawIo, stdout: terminalSafe(rawIo.stdout), stderr: terminalSafe(rawIo.stderr) };
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  if (command !== 'up') {
    const problem = command === undefined ? 'missing command' : unknownCommand(command, ['up']);
    io.stderr.write(`sigil-mesh: ${problem}\n\n${USAGE}`);
    return 2;
  }
  let values: { dir?: string; 'base-port'?: string; output?: string; help?: boolean };
  try {
    values = parseCliArgs(
      rest,
      {
        dir: { type: 'string' },
        'base-port': { type: 'string' },
        output: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      false,
    ).values;
  } catch (err) {
    io.stderr.write(`sigil-mesh up: ${(err as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const problem = checkFlags(values);
  if (problem !== null) {
    io.stderr.write(`sigil-mesh up: ${problem}\n`);
    return 2;
  }
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => controller.abort(signal);
  // Handled, so none of them kills us before the children are stopped; repeats change nothing
  // (npm forwards the terminal's SIGINT, so one Ctrl-C can arrive twice).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stop);
  // A closed terminal or pipe (the SIGHUP case) fails our writes with EIO/EPIPE; unhandled, that
  // error would end the process before it stops its children. What is lost is only progress text.
  // Left in place on return: a failed write may report after the last line was written.
  if (rawIo.stdout === process.stdout)
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  try {
    return await runMesh({
      dir: values.dir ?? '.sigil',
      cwd: io.cwd,
      basePort: values['base-port'] === undefined ? DEFAULT_BASE_PORT : Number(values['base-port']),
      uid: process.getuid!(),
      clock: systemClock,
      env: io.env,
      bins: {
        node: process.execPath,
        server: `${BIN_DIR}sigil-server`,
        agent: `${BIN_DIR}sigil-agent`,
        proxy: `${BIN_DIR}sigil-proxy`,
        demoApp: DEMO_APP,
      },
      reporter: values.output === 'json' ? jsonReporter(io.stdout) : textReporter(io.stdout, io.stderr),
      signal: controller.signal,
    });
  } finally {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(signal, stop);
  }
}

function checkFlags(values: { dir?: string; 'base-port'?: string; output?: string }): string | null {
  if (values.output !== undefined && values.output !== 'text' && values.output !== 'json')
    return `--output must be text or json (got ${quote(values.output)})`;
  if (values.dir !== undefined && (values.dir === '' || values.dir.includes('\0')))
    return '--dir must be a directory path';
  const port = values['base-port'];
  if (port !== undefined) {
    const n = Number(port);
    if (!/^\d{1,5}$/.test(port) || n < 1024 || n + PORT_COUNT - 1 > 65535)
      return `--base-port must be a whole number from 1024 to ${65535 - PORT_COUNT + 1} (got ${quote(port)})`;
  }
  return null;
}
