// `sigil-agent api …`: talk to a Workload API endpoint as a workload would (spire-agent's `api`
// commands), through our own SDK so the CLI exercises the same code the proxy uses. It never prints
// private keys; `fetch x509 --write` puts them in 0600 files. Exit codes: 0 ok, 1 refused (permission
// denied, invalid request or token), 2 usage, 3 endpoint unreachable, 5 socket refused as unsafe.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type JwtSvid, WorkloadApiClient, type X509Context } from '../../sdk/index.js';
import { bundleToPem } from '../../spiffe/bundle.js';
import {
  errorJson,
  parseCliArgs,
  unknownCommand,
  usageError,
  wantsJsonOutput,
} from '../../spiffe/cli-args.js';
import { type Clock, systemClock } from '../../spiffe/clock.js';
import { isSigilError, quote, SigilError } from '../../spiffe/errors.js';
import { encodePem } from '../../spiffe/pem.js';
import { defaultWorkloadApiSocket, type RuntimeContext, systemSocketPath } from '../../spiffe/runtime-dir.js';
import { checkSocketForClient } from '../../spiffe/socket-dir.js';
import { describeCertificate } from '../../spiffe/x509-svid.js';

export interface ApiIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Readonly<Record<string, string | undefined>>;
  /** The invoking user, whose sockets (and root's) the CLI trusts; defaults to this process's uid. */
  uid?: number;
  /** Ends `api watch`. Defaults to SIGINT. */
  signal?: AbortSignal;
  /** Defaults to the system clock. */
  clock?: Clock;
}

const EXIT_OK = 0;
const EXIT_REFUSED = 1;
const EXIT_USAGE = 2;
const EXIT_UNREACHABLE = 3;
/**
 * The socket, or a directory on its path, could have been planted or swapped by another user. Shared
 * with the admin-socket commands of main.ts.
 */
export const EXIT_UNSAFE_SOCKET = 5;
/** A fetch that has not answered by then is as good as unreachable. */
const DEFAULT_TIMEOUT_MS = 10_000;

const USAGE = `Usage: sigil-agent api <command> [flags]

Commands:
  fetch x509 [--write DIR]                    fetch X.509-SVIDs (and write svid.N.pem, svid.N.key, bundle.N.pem)
  fetch jwt --audience A [--spiffe-id ID]     fetch JWT-SVIDs for an audience (repeat --audience for more)
  validate jwt --audience A --svid TOKEN      validate a JWT-SVID through the agent
  watch                                       print every X.509-SVID update until interrupted

Flags:
  --socket-path PATH   Workload API socket path or URI (default: $SPIFFE_ENDPOINT_SOCKET, else
                       ${systemSocketPath('workloadApi')} if it exists, else where "sigil-agent run"
                       puts it when you run it)
  --socket-owner UID   also trust a socket that belongs to this uid: an agent running as a user of
                       its own (by default the socket must belong to you or root)
  --output text|json   output format (default: text)
  --timeout MS         give up a fetch after this many milliseconds (default: ${DEFAULT_TIMEOUT_MS})
  -h, --help           show this help
`;

const FLAGS = {
  'socket-path': { type: 'string' },
  'socket-owner': { type: 'string' },
  output: { type: 'string' },
  timeout: { type: 'string' },
  write: { type: 'string' },
  audience: { type: 'string', multiple: true },
  'spiffe-id': { type: 'string' },
  svid: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Flags {
  'socket-path'?: string;
  'socket-owner'?: string;
  output?: string;
  timeout?: string;
  write?: string;
  audience?: string[];
  'spiffe-id'?: string;
  svid?: string;
  help?: boolean;
}

interface Context {
  io: ApiIo;
  flags: Flags;
  json: boolean;
  client: WorkloadApiClient;
  clock: Clock;
  timeoutMs: number;
}

/** Whose sockets the CLI trusts and where it looks for them: the invoking user (`io.uid`, else ours). */
export function runtimeOf(io: Pick<ApiIo, 'uid' | 'env'>): RuntimeContext {
  return { uid: io.uid ?? process.getuid!(), env: io.env };
}

/** Runs `sigil-agent api <args>`; returns the exit code. */
export async function apiCommand(args: string[], io: ApiIo): Promise<number> {
  // Known before parsing, so that a script asking for JSON gets even a usage error as JSON.
  const json = wantsJsonOutput(args);
  let flags: Flags;
  let positionals: string[];
  try {
    const parsed = parseCliArgs(args, FLAGS);
    flags = parsed.values as Flags;
    positionals = parsed.positionals;
  } catch (err) {
    return usage(io, err, json);
  }
  if (flags.help) {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  const command = positionals.join(' ');
  const run = COMMANDS[command];
  if (!run) {
    const problem = command === '' ? 'missing command' : unknownCommand(command, Object.keys(COMMANDS));
    return usage(io, problem, json);
  }
  if (flags.output !== undefined && flags.output !== 'text' && flags.output !== 'json') {
    return usage(
      io,
      usageError(`--output must be "text" or "json" (got ${quote(flags.output)})`, 'output'),
      json,
    );
  }
  const timeoutMs = flags.timeout === undefined ? DEFAULT_TIMEOUT_MS : Number(flags.timeout);
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    const problem = `--timeout must be a positive number of milliseconds (got ${quote(flags.timeout)})`;
    return usage(io, usageError(problem, 'timeout'), json);
  }
  const owner = flags['socket-owner'] === undefined ? undefined : Number(flags['socket-owner']);
  if (owner !== undefined && !(Number.isSafeInteger(owner) && owner >= 0)) {
    const problem = `--socket-owner must be a uid, a whole number (got ${quote(flags['socket-owner'])})`;
    return usage(io, usageError(problem, 'socket-owner'), json);
  }
  const runtime = runtimeOf(io);
  let client: WorkloadApiClient;
  try {
    client = new WorkloadApiClient({
      address: socketAddress(flags['socket-path'], runtime),
      // Checked before every connection: a planted socket would hand us its own SVIDs and bundles.
      checkSocket: (socketPath) =>
        checkSocketForClient(socketPath, { uid: runtime.uid, owner, field: '--socket-path' }),
    });
  } catch (err) {
    return usage(io, err, json);
  }
  const ctx: Context = {
    io,
    flags,
    json,
    client,
    clock: io.clock ?? systemClock,
    timeoutMs,
  };
  try {
    return await run(ctx);
  } catch (err) {
    return failure(io, err, json);
  } finally {
    client.close();
  }
}

const COMMANDS: Readonly<Record<string, (ctx: Context) => Promise<number>>> = {
  'fetch x509': fetchX509,
  'fetch jwt': fetchJwt,
  'validate jwt': validateJwt,
  watch,
};

async function fetchX509(ctx: Context): Promise<number> {
  const startedMs = ctx.clock.nowMs();
  const context = await withTimeout(ctx, (signal) => ctx.client.fetchX509Context(signal));
  const elapsedMs = ctx.clock.nowMs() - startedMs;
  if (ctx.flags.write !== undefined) await writeX509Files(ctx.flags.write, context);
  if (ctx.json) {
    ctx.io.stdout.write(`${JSON.stringify(x509Json(context))}\n`);
    return EXIT_OK;
  }
  const count = context.svids.length;
  const lines = [`Received ${count} svid${count === 1 ? '' : 's'} after ${elapsedMs}ms`, ''];
  for (const svid of context.svids) {
    const leaf = describeCertificate(svid.certificates[0]!);
    lines.push(`SPIFFE ID:         ${svid.spiffeId}`);
    if (svid.hint !== '') lines.push(`Hint:              ${svid.hint}`);
    lines.push(`SVID Serial:       ${leaf.serialHex}`);
    lines.push(`SVID Valid After:  ${iso(leaf.notBeforeMs)}`);
    lines.push(`SVID Valid Until:  ${iso(leaf.notAfterMs)}`);
    const bundle = context.bundles.get(svid.spiffeId.trustDomain.name);
    bundle?.x509Authorities.forEach((der, i) => {
      const ca = describeCertificate(der);
      lines.push(`CA #${i + 1} Valid After:  ${iso(ca.notBeforeMs)}`);
      lines.push(`CA #${i + 1} Valid Until:  ${iso(ca.notAfterMs)}`);
    });
    lines.push('');
  }
  if (ctx.flags.write !== undefined)
    lines.push(`Wrote ${count} svid${count === 1 ? '' : 's'} to ${ctx.flags.write}`);
  ctx.io.stdout.write(`${lines.join('\n')}\n`);
  return EXIT_OK;
}

async function fetchJwt(ctx: Context): Promise<number> {
  const audience = ctx.flags.audience ?? [];
  if (audience.length === 0) {
    return usage(ctx.io, usageError('fetch jwt: --audience is required', 'audience'), ctx.json);
  }
  const svids = await withTimeout(ctx, (signal) =>
    ctx.client.fetchJwtSvids(audience, ctx.flags['spiffe-id'], signal),
  );
  if (ctx.json) {
    ctx.io.stdout.write(`${JSON.stringify({ svids: svids.map(jwtJson) })}\n`);
  } else {
    ctx.io.stdout.write(svids.map((s) => `token(${s.spiffeId}):\n\t${s.token}\n`).join(''));
  }
  return EXIT_OK;
}

async function validateJwt(ctx: Context): Promise<number> {
  const audience = ctx.flags.audience ?? [];
  if (audience.length !== 1) {
    return usage(
      ctx.io,
      usageError('validate jwt: exactly one --audience is required', 'audience'),
      ctx.json,
    );
  }
  const token = ctx.flags.svid;
  if (token === undefined || token === '') {
    return usage(ctx.io, usageError('validate jwt: --svid is required', 'svid'), ctx.json);
  }
  const result = await withTimeout(ctx, (signal) => ctx.client.validateJwtSvid(token, audience[0]!, signal));
  if (ctx.json) {
    ctx.io.stdout.write(
      `${JSON.stringify({ spiffe_id: result.spiffeId.toString(), claims: result.claims })}\n`,
    );
  } else {
    ctx.io.stdout.write(
      `SVID is valid.\nSPIFFE ID : ${result.spiffeId}\nClaims    : ${JSON.stringify(result.claims)}\n`,
    );
  }
  return EXIT_OK;
}

async function watch(ctx: Context): Promise<number> {
  const { signal, dispose } = ctx.io.signal ? { signal: ctx.io.signal, dispose: () => {} } : sigintSignal();
  try {
    await ctx.client.watchX509Svids(
      (context) => {
        const svids = context.svids.map((svid) => {
          const leaf = describeCertificate(svid.certificates[0]!);
          return {
            spiffe_id: svid.spiffeId.toString(),
            serial: leaf.serialHex,
            expires_at: iso(leaf.notAfterMs),
          };
        });
        const line = ctx.json
          ? JSON.stringify({ received_at: iso(ctx.clock.nowMs()), svids })
          : `${iso(ctx.clock.nowMs())} update: ${svids
              .map((s) => `${s.spiffe_id} serial=${s.serial} expires=${s.expires_at}`)
              .join('; ')}`;
        ctx.io.stdout.write(`${line}\n`);
      },
      signal,
      // Retried by the watch with backoff; shown so an operator sees why nothing arrives.
      { onError: (err) => ctx.io.stderr.write(`sigil-agent api watch: ${err.message} (retrying)\n`) },
    );
  } finally {
    dispose();
  }
  return EXIT_OK;
}

/** `--socket-path` takes a path (as spire-agent's -socketPath) or a full Workload API URI. */
function socketAddress(flag: string | undefined, runtime: RuntimeContext): string {
  if (flag !== undefined) return flag.startsWith('/') ? `unix://${flag}` : flag;
  return runtime.env.SPIFFE_ENDPOINT_SOCKET || `unix://${defaultWorkloadApiSocket(runtime)}`;
}

async function withTimeout<T>(ctx: Context, fetch: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const cancel = ctx.clock.setTimer(ctx.timeoutMs, () => controller.abort());
  try {
    return await fetch(controller.signal);
  } catch (err) {
    if (controller.signal.aborted) {
      throw new SigilError('ERR_UNAVAILABLE', `no answer from the Workload API within ${ctx.timeoutMs}ms`, {
        cause: err,
      });
    }
    throw err;
  } finally {
    cancel();
  }
}

async function writeX509Files(dir: string, context: X509Context): Promise<void> {
  await mkdir(dir, { recursive: true });
  const federated = [...context.bundles.values()].filter(
    (b) => !context.svids.some((s) => s.spiffeId.trustDomain.equals(b.trustDomain)),
  );
  for (const [i, svid] of context.svids.entries()) {
    const chainPem = svid.certificates.map((der) => encodePem('CERTIFICATE', der)).join('');
    await writeFile(path.join(dir, `svid.${i}.pem`), chainPem, { mode: 0o644 });
    const keyPem = svid.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const keyFile = path.join(dir, `svid.${i}.key`);
    await writeFile(keyFile, keyPem, { mode: 0o600 });
    // writeFile's mode applies only when it creates the file; an existing file keeps its old mode.
    await chmod(keyFile, 0o600);
    const own = context.bundles.get(svid.spiffeId.trustDomain.name);
    if (own) await writeFile(path.join(dir, `bundle.${i}.pem`), bundleToPem(own), { mode: 0o644 });
    for (const [j, bundle] of federated.entries()) {
      await writeFile(path.join(dir, `federated_bundle.${i}.${j}.pem`), bundleToPem(bundle), { mode: 0o644 });
    }
  }
}

function x509Json(context: X509Context) {
  return {
    svids: context.svids.map((svid) => {
      const leaf = describeCertificate(svid.certificates[0]!);
      return {
        spiffe_id: svid.spiffeId.toString(),
        hint: svid.hint,
        serial: leaf.serialHex,
        not_before: iso(leaf.notBeforeMs),
        not_after: iso(leaf.notAfterMs),
        chain_length: svid.certificates.length,
      };
    }),
    bundles: Object.fromEntries(
      [...context.bundles.values()].map((b) => [
        b.trustDomain.idString,
        { x509_authorities: b.x509Authorities.length },
      ]),
    ),
  };
}

function jwtJson(svid: JwtSvid) {
  return {
    spiffe_id: svid.spiffeId.toString(),
    svid: svid.token,
    hint: svid.hint,
    audience: svid.audience,
    expires_at: svid.expiresAtMs > 0 ? iso(svid.expiresAtMs) : null,
  };
}

function sigintSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', onSigint) };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** A usage problem (a message, or the error parsing raised): exit 2, with usage unless JSON was asked. */
function usage(io: ApiIo, problem: unknown, json: boolean): number {
  const err = typeof problem === 'string' ? usageError(problem) : problem;
  if (json) io.stdout.write(errorJson(err));
  else
    io.stderr.write(`sigil-agent api: ${(err as Error).message}\nRun "sigil-agent api --help" for usage.\n`);
  return EXIT_USAGE;
}

/** SigilError code → exit code; the one table for this edge. */
function failure(io: ApiIo, err: unknown, json: boolean): number {
  if (json) io.stdout.write(errorJson(err));
  else io.stderr.write(`sigil-agent api: ${err instanceof Error ? err.message : String(err)}\n`);
  if (!isSigilError(err)) return EXIT_REFUSED;
  switch (err.code) {
    case 'ERR_UNAVAILABLE':
      return EXIT_UNREACHABLE;
    case 'ERR_SOCKET_UNSAFE':
      return EXIT_UNSAFE_SOCKET;
    case 'ERR_CONFIG_INVALID':
      return EXIT_USAGE;
    default:
      return EXIT_REFUSED;
  }
}
