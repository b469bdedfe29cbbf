// `sigil-server run`: reads config + flags, starts the server, prints how to use it, and stops
// cleanly on SIGINT/SIGTERM. Flags override the config file's keys of the same meaning.
import { parseCliArgs } from '../../spiffe/cli-args.js';
import { isSigilError } from '../../spiffe/errors.js';
import { helpColumns, helpParagraph } from '../../spiffe/help-layout.js';
import { describeDefaultSocket } from '../../spiffe/runtime-dir.js';
import { untilStopSignal } from '../../spiffe/shutdown.js';
import { DEFAULT_DATA_DIR, LOG_LEVELS, loadServerConfig } from '../config.js';
import { type RunningServer, startServer } from '../main.js';
import { inClusterApiServer } from '../notifiers/index.js';
import type { CliIo } from './command.js';
import { defaultAdminSocket } from './default-admin-socket.js';

const FLAG_ROWS: ReadonlyArray<readonly [string, string]> = [
  ['--config FILE', 'YAML or JSON config file'],
  ['--trust-domain NAME', 'trust domain, e.g. example.org [trust_domain]'],
  ['--data-dir DIR', `keys and SQLite store (default ${DEFAULT_DATA_DIR}) [data_dir]`],
  ['--bind HOST:PORT', 'agent API address (default 0.0.0.0:8081) [bind]'],
  [
    '--admin-socket PATH',
    `admin API Unix socket [admin_socket], default ${describeDefaultSocket('serverAdmin')}`,
  ],
  ['--admin-bind HOST:PORT', 'also serve the admin API over TCP with mTLS (admin SVIDs only) [admin_bind]'],
  ['--metrics-bind HOST:PORT', 'serve GET /metrics (Prometheus, plain HTTP) there too [metrics_bind]'],
  ['--log-level LEVEL', `${LOG_LEVELS.join('|')} (default info) [log_level]`],
  ['-h, --help', 'show this help'],
];

const FLAGS = {
  config: { type: 'string' },
  'trust-domain': { type: 'string' },
  'data-dir': { type: 'string' },
  bind: { type: 'string' },
  'admin-socket': { type: 'string' },
  'admin-bind': { type: 'string' },
  'metrics-bind': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `Usage: sigil-server run [flags]

Starts the Sigil server: the certificate authority of one trust domain.

Flags (each overrides the config file key in brackets):
${helpColumns(FLAG_ROWS)}

${helpParagraph(`Config-only keys: ca.key_type (ec-p256|ec-p384|rsa-2048), ca.ttl (24h), ca.jwt_key_type,
ca.publish_lead, ca.upstream.{cert_file,key_file,bundle_file}, default_x509_svid_ttl (1h),
default_jwt_svid_ttl (5m), agent_svid_ttl (1h), min_svid_ttl (1m; lifetimes are whole seconds and
at least this), agent_api.{handshake_timeout,idle_timeout,request_timeout,max_connections,
max_connections_per_ip,max_concurrent_streams,attest_rate,attest_burst,sign_rate,sign_burst,
sync_drain_timeout}, admin_api.{handshake_timeout,header_timeout,request_timeout,idle_timeout,
max_connections}, node_attestors, datastore.{kind,path,connection_string}, notifiers.k8s_bundle.{namespace,
config_map,config_map_key,api_server,token_path,ca_path}. See deploy/server.example.yaml.`)}

${helpParagraph('Exit codes: 0 stopped by SIGINT or SIGTERM, 1 failed to start, 2 usage or config error (an address or socket path that cannot be listened on included: the message names the setting).')}
`;

export async function runCommand(args: string[], io: CliIo): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseCliArgs(args, FLAGS, false).values;
  } catch (err) {
    io.stderr.write(
      `sigil-server run: ${(err as Error).message}\nRun "sigil-server run --help" for usage.\n`,
    );
    return 2;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  let server: RunningServer;
  const uid = io.uid ?? process.getuid!();
  const socketByDefault = defaultAdminSocket(io);
  try {
    const config = loadServerConfig(
      (values.config as string | undefined) ?? null,
      {
        trustDomain: values['trust-domain'] as string | undefined,
        dataDir: values['data-dir'] as string | undefined,
        bind: values.bind as string | undefined,
        adminSocket: values['admin-socket'] as string | undefined,
        adminBind: values['admin-bind'] as string | undefined,
        metricsBind: values['metrics-bind'] as string | undefined,
        logLevel: values['log-level'] as string | undefined,
      },
      process.cwd(),
      { adminSocket: socketByDefault, kubernetesApiServer: inClusterApiServer(io.env) },
    );
    server = await startServer(config, { uid });
  } catch (err) {
    const message = isSigilError(err) ? err.message : ((err as Error).stack ?? String(err));
    io.stderr.write(`sigil-server run: ${message}\n`);
    return isSigilError(err, 'ERR_CONFIG_INVALID') ? 2 : 1;
  }
  io.stderr.write(banner(server, socketByDefault));

  const signal = await untilStopSignal();
  server.logger.info({ signal }, 'Stopping');
  await server.close();
  return 0;
}

function banner(server: RunningServer, socketByDefault: string): string {
  const { config } = server;
  const socketFlag = config.adminSocket === socketByDefault ? '' : ` --admin-socket ${config.adminSocket}`;
  const td = config.trustDomain.name;
  return `
Sigil server for trust domain "${td}" is running.
  admin socket : ${config.adminSocket}
  admin mTLS   : ${server.adminAddress ? `https://${server.adminAddress.host}:${server.adminAddress.port}` : 'off (set --admin-bind)'}
  data dir     : ${config.dataDir}

Try, from another terminal:
  bin/sigil-server entry create${socketFlag} --spiffe-id spiffe://${td}/web --parent-id spiffe://${td}/node1 --selector unix:uid:1000
  bin/sigil-server token generate${socketFlag} --spiffe-id spiffe://${td}/node1
  bin/sigil-server x509 mint${socketFlag} --spiffe-id spiffe://${td}/web --write .sigil/svid
  openssl verify -partial_chain -CAfile .sigil/svid/bundle.pem .sigil/svid/svid.pem
Stop with Ctrl-C.
`;
}
