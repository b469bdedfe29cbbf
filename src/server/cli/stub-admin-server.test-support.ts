// Test support for the CLI tests: a real HTTP server on a temp Unix socket that answers only the
// routes a test gives it and records every request, so tests assert the exact wire calls the CLI
// makes. Not a fake of the admin API's behaviour: each test scripts the replies it needs.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CliIo, main } from './main.js';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  /** Every query parameter with all its values, in order. */
  readonly query: Record<string, string[]>;
  /** Parsed JSON body, or undefined when there was none. */
  readonly body: unknown;
  readonly contentType: string | undefined;
}

export interface StubReply {
  readonly status?: number;
  /** Sent as JSON. */
  readonly json?: unknown;
  /** Sent as is (for PEM or malformed bodies). */
  readonly text?: string;
}

export type StubRoute = StubReply | ((req: RecordedRequest) => StubReply);

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface StubAdminServer {
  readonly dir: string;
  readonly socketPath: string;
  readonly requests: RecordedRequest[];
  /** Runs the CLI in-process against this server (appends --admin-socket). */
  cli(argv: readonly string[]): Promise<CliRun>;
  close(): Promise<void>;
}

/** Routes are keyed "METHOD /path" (path without query). Anything else answers 404. */
export async function startStubAdminServer(routes: Record<string, StubRoute>): Promise<StubAdminServer> {
  const dir = await mkdtemp(join(tmpdir(), 'sigil-cli-'));
  const socketPath = join(dir, 'admin.sock');
  const requests: RecordedRequest[] = [];
  const server: Server = createServer(async (req, res) => {
    const recorded = await record(req);
    requests.push(recorded);
    const route = routes[`${recorded.method} ${recorded.path}`];
    const reply: StubReply =
      route === undefined
        ? { status: 404, json: { error: { code: 'ERR_NOT_FOUND', message: `no route ${recorded.path}` } } }
        : typeof route === 'function'
          ? route(recorded)
          : route;
    const isJson = reply.json !== undefined;
    res.writeHead(reply.status ?? 200, isJson ? { 'content-type': 'application/json' } : {});
    res.end(isJson ? JSON.stringify(reply.json) : (reply.text ?? ''));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    dir,
    socketPath,
    requests,
    cli: (argv) => runCli([...argv, '--admin-socket', socketPath]),
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs the CLI in-process with captured output and an empty environment. */
export async function runCli(argv: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: {
      write: (s: string) => {
        stdout += s;
      },
    },
    stderr: {
      write: (s: string) => {
        stderr += s;
      },
    },
    env,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

async function record(req: IncomingMessage): Promise<RecordedRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const url = new URL(req.url ?? '/', 'http://stub');
  const query: Record<string, string[]> = {};
  for (const [key, value] of url.searchParams) query[key] = [...(query[key] ?? []), value];
  return {
    method: req.method ?? '',
    path: url.pathname,
    query,
    body: text === '' ? undefined : JSON.parse(text),
    contentType: req.headers['content-type'],
  };
}
