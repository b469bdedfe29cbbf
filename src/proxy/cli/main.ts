// Entry point of the sigil-proxy CLI: `run` starts the sidecar; `policy check|lint` answers
// "would this request be allowed?" and "is this policy sound?", and `route check` "where would
// this request go?", without a running proxy.
// Exit codes: 0 ok (allowed / clean / routed), 1 denied or lint errors or no route or the proxy failed,
// 2 usage or config error.
import { parseCliArgs, unknownCommand } from '../../spiffe/cli-args.js';
import { isSigilError } from '../../spiffe/errors.js';
import { untilStopSignal } from '../../spiffe/shutdown.js';
import { terminalSafe } from '../../spiffe/text.js';
import { loadProxyConfig } from '../config.js';
import { startProxy } from '../main.js';
import { policyCommand } from '../policy/index.js';
import { routeCommand } from '../routes/index.js';

export interface ProxyCliIo {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
}

const USAGE = `Usage: sigil-proxy <command> [flags]

Commands:
  run --config FILE          start the sidecar (inbound/outbound listeners, admin port)
  policy check --config FILE --from ID --to-port P [--method M] [--path /x]
                             print allow/deny for a request and the rule that decided
  policy lint FILE           report rules that can never match, overlapping ALLOW/DENY and
                             unknown trust domains
  route check --config FILE --path /x [--method M] [-H 'name: value'] [--service S]
                             print the route, rule, filters and backends a request would take

Run "sigil-proxy <command> --help" for details.
Exit codes: 0 ok (allowed, clean, routed), 1 denied / lint errors / no route / runtime failure,
2 usage or config error.
`;

const RUN_USAGE = `Usage: sigil-proxy run --config FILE [--log-level LEVEL]

The config (YAML or JSON) names the Workload API socket (workload_api, default $SPIFFE_ENDPOINT_SOCKET
or unix:///run/sigil-agent/public/api.sock), which of its SVIDs to use (spiffe_id, default the first;
not ready until it is offered), the admin port (admin, default 127.0.0.1:15000), an optional
policy_file and routes_file (Gateway API HTTPRoute/GRPCRoute, docs/proxy-routes.md), both reloaded on
change, limits (connection caps and timeouts), path_normalization, inbound/outbound listeners, and
optional tracing and access_log (docs/proxy-tracing.md). See deploy/proxy.example.yaml.

Exit codes: 0 stopped by SIGINT or SIGTERM, 1 failed to start, 2 usage or config error (an address
that cannot be listened on included: the message names the setting, e.g. inbound[0].listen).
`;

export async function main(argv: string[], rawIo: ProxyCliIo = process): Promise<number> {
  // Everything printed passes one escape: IDs, paths and errors can carry text from other people.
  const io: ProxyCliIo = { ...rawIo, stdout: terminalSafe(rawIo.stdout), stderr: terminalSafe(rawIo.stderr) };
  const [command, ...rest] = argv;
  if (command === 'policy') return policyCommand(rest, io);
  if (command === 'route') return routeCommand(rest, io);
  if (command === 'run') return run(rest, io);
  if (command === undefined || command === '--help' || command === '-h') {
    (command === undefined ? io.stderr : io.stdout).write(USAGE);
    return command === undefined ? 2 : 0;
  }
  io.stderr.write(`sigil-proxy: ${unknownCommand(command, ['run', 'policy', 'route'])}\n\n${USAGE}`);
  return 2;
}

async function run(args: string[], io: ProxyCliIo): Promise<number> {
  let values: { config?: string; 'log-level'?: string; help?: boolean };
  try {
    values = parseCliArgs(
      args,
      { config: { type: 'string' }, 'log-level': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      false,
    ).values;
  } catch (err) {
    io.stderr.write(`sigil-proxy run: ${(err as Error).message}\nRun "sigil-proxy run --help" for usage.\n`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(RUN_USAGE);
    return 0;
  }
  if (!values.config) {
    io.stderr.write(`sigil-proxy run: --config FILE is required\n\n${RUN_USAGE}`);
    return 2;
  }
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  try {
    const config = loadProxyConfig(values.config, io.env);
    proxy = await startProxy(values['log-level'] ? { ...config, logLevel: values['log-level'] } : config, {
      configFile: values.config,
      env: io.env,
    });
  } catch (err) {
    io.stderr.write(
      `sigil-proxy run: ${isSigilError(err) ? err.message : ((err as Error).stack ?? String(err))}\n`,
    );
    return isSigilError(err, 'ERR_CONFIG_INVALID') || isSigilError(err, 'ERR_POLICY_INVALID') ? 2 : 1;
  }
  await untilStopSignal();
  await proxy.close();
  return 0;
}
