// The agent's own client code (ServerConnection + attestNode) pointed at a test server, plus the CLI
// calls tests make around it: attest, sign, mint, and read the server's log records.
import type { ServiceError } from '@grpc/grpc-js';
import pino from 'pino';
import type { AgentState } from '../../src/agent/agent-state.js';
import { attestNode } from '../../src/agent/server-client/attest.js';
import { ServerConnection } from '../../src/agent/server-client/connection.js';
import { createNodeAttestorAgent, type NodeAttestorAgent } from '../../src/attestors/node/index.js';
import { bundleToPem } from '../../src/spiffe/bundle.js';
import { parseTrustDomain } from '../../src/spiffe/id.js';
import { encodePem } from '../../src/spiffe/pem.js';
import type { ServerProcess } from './harness.js';

export const TRUST_DOMAIN = parseTrustDomain('example.org');

export function newConnection(
  address: string,
  bundlePem: string,
  logger: pino.Logger = pino({ level: 'silent' }),
): ServerConnection {
  const connection = new ServerConnection({
    addresses: [address],
    trustDomain: TRUST_DOMAIN,
    nowMs: () => Date.now(),
    logger,
  });
  connection.setBundlePem(bundlePem);
  return connection;
}

/** An attested agent: its state, and a connection that calls as it. */
export interface Attested {
  readonly state: AgentState;
  readonly connection: ServerConnection;
}

/** Attests with `attestor` and returns a connection that calls as the new agent (closed if refused). */
export async function attestWith(
  server: ServerProcess,
  bundlePem: string,
  attestor: NodeAttestorAgent,
): Promise<Attested> {
  const connection = newConnection(server.agentApiAddress, bundlePem);
  let state: AgentState;
  try {
    state = await attestNode(connection, attestor, TRUST_DOMAIN, false);
  } catch (err) {
    connection.close();
    throw err;
  }
  connection.setBundlePem(bundleToPem(state.bundle));
  connection.setIdentity(
    state.chain.map((c) => encodePem('CERTIFICATE', c)).join(''),
    state.key.export({ format: 'pem', type: 'pkcs8' }) as string,
  );
  return { state, connection };
}

/** Attests with a join token and returns a connection that calls as the new agent. */
export function attestWithToken(server: ServerProcess, bundlePem: string, token: string): Promise<Attested> {
  return attestWith(server, bundlePem, createNodeAttestorAgent('join_token', { token }));
}

/** Sends one Attest params message as given (any CSR bytes) and resolves with how the stream ended. */
export function attestRaw(
  connection: ServerConnection,
  params: { attestor: string; payload: Buffer; csr: Buffer },
): Promise<{ ok: boolean; error?: ServiceError }> {
  const { stream, close } = connection.attestStream(false);
  return new Promise<{ ok: boolean; error?: ServiceError }>((resolve) => {
    stream.on('data', (message: { result?: unknown }) => {
      if (message.result) resolve({ ok: true });
    });
    stream.on('error', (error: ServiceError) => resolve({ ok: false, error }));
    stream.write({ params });
  }).finally(() => {
    stream.end();
    close();
  });
}

/** A rejected promise's error (fails the test if it resolved). */
export async function rejectionOf<T = ServiceError>(promise: Promise<unknown>): Promise<T> {
  const outcome = await promise.then(
    () => ({ resolved: true as const }),
    (error: unknown) => ({ resolved: false as const, error }),
  );
  if (outcome.resolved) throw new Error('expected a rejection, the call succeeded');
  return outcome.error as T;
}

export async function cliJson<T>(server: ServerProcess, ...args: string[]): Promise<T> {
  const res = await server.cli(...args, '--output', 'json');
  if (res.code !== 0) throw new Error(`sigil-server ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
  return JSON.parse(res.stdout) as T;
}

export async function generateToken(server: ServerProcess, ...args: string[]): Promise<string> {
  return (await cliJson<{ token: string }>(server, 'token', 'generate', ...args)).token;
}

export async function bundlePemOf(server: ServerProcess): Promise<string> {
  const res = await server.cli('bundle', 'show', '--format', 'pem');
  if (res.code !== 0) throw new Error(`bundle show failed: ${res.stderr}`);
  return res.stdout;
}

/** The server's JSON log records with message `msg`, from character `from` of its log on. */
export function serverLog(server: ServerProcess, msg: string, from = 0): Array<Record<string, unknown>> {
  return server
    .logs()
    .slice(from)
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes(`"msg":${JSON.stringify(msg)}`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
