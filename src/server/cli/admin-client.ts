// HTTP to the admin API over its Unix socket (undici). It turns transport failures into
// ERR_UNAVAILABLE and non-2xx answers into AdminApiError, and nothing more: commands decide what a
// response means, and main.ts maps errors to exit codes in one place.
import { Client } from 'undici';
import { SigilError } from '../../spiffe/errors.js';

/** A dead server should fail fast; a busy one still gets the usual request budget. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Minting and batch calls are quick on a healthy server; anything slower is reported, not awaited. */
const RESPONSE_TIMEOUT_MS = 60_000;

/** Our code for an answer that is not the admin API's error shape (a proxy, an old server, a bug). */
const UNEXPECTED_RESPONSE = 'ERR_UNEXPECTED_RESPONSE';

export type Query = Record<string, string | readonly string[] | undefined>;

export interface AdminResponse {
  readonly status: number;
  readonly contentType: string;
  /** The body exactly as received; `--output json` prints it untouched. */
  readonly text: string;
}

/** The error object of the admin API's error body, as the server sent it. */
export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly field?: string;
}

/**
 * The server answered with a non-2xx status. Not a SigilError on purpose: its `code` is whatever the
 * server sent, which may be one this build does not know, and `status` decides the exit code.
 */
export class AdminApiError extends Error {
  override readonly name = 'AdminApiError';
  constructor(
    readonly status: number,
    readonly wire: WireError,
    /** The body as received, for `--output json`. */
    readonly bodyText: string,
  ) {
    super(wire.message);
  }

  /** For `--output json`: the server's error body as sent, or one in the same shape if it sent none. */
  jsonText(): string {
    const sentByServer = this.wire.code !== UNEXPECTED_RESPONSE;
    return sentByServer ? this.bodyText.trimEnd() : JSON.stringify({ error: this.wire });
  }
}

export interface AdminClient {
  request(method: string, path: string, options?: { query?: Query; body?: unknown }): Promise<AdminResponse>;
  close(): Promise<void>;
}

export function createAdminClient(socketPath: string): AdminClient {
  // The host is never resolved: the connection goes to socketPath; it only fills the Host header.
  const client = new Client('http://sigil-server', {
    connect: { socketPath, timeout: CONNECT_TIMEOUT_MS },
    headersTimeout: RESPONSE_TIMEOUT_MS,
    bodyTimeout: RESPONSE_TIMEOUT_MS,
  });
  return {
    async request(method, path, options = {}) {
      const headers: Record<string, string> = { accept: 'application/json' };
      let body: string | undefined;
      if (options.body !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(options.body);
      }
      let response: Awaited<ReturnType<Client['request']>>;
      try {
        response = await client.request({ method, path: withQuery(path, options.query), headers, body });
      } catch (err) {
        throw unreachable(socketPath, err);
      }
      const text = await response.body.text();
      const result = {
        status: response.statusCode,
        contentType: String(response.headers['content-type'] ?? ''),
        text,
      };
      if (result.status >= 400) throw new AdminApiError(result.status, wireError(result.status, text), text);
      return result;
    },
    close: () => client.close(),
  };
}

/** A 2xx answer that does not make sense (missing field, looping pages): a server fault, exit 4. */
export function unexpectedResponse(message: string, bodyText: string): AdminApiError {
  return new AdminApiError(502, { code: UNEXPECTED_RESPONSE, message }, bodyText);
}

/** Parses a successful JSON body; a server that answers 2xx with something else is broken (exit 4). */
export function jsonBody<T>(response: AdminResponse): T {
  try {
    return JSON.parse(response.text) as T;
  } catch {
    // Reported as a server fault with the start of what it sent; the parse error adds nothing.
    throw unexpectedResponse(badBody(response.status, response.text).message, response.text);
  }
}

function withQuery(path: string, query: Query | undefined): string {
  if (query === undefined) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    for (const v of typeof value === 'string' ? [value] : value) params.append(key, v);
  }
  const encoded = params.toString();
  return encoded === '' ? path : `${path}?${encoded}`;
}

function wireError(status: number, text: string): WireError {
  try {
    const parsed = JSON.parse(text) as { error?: Partial<WireError> };
    if (typeof parsed.error?.code === 'string' && typeof parsed.error.message === 'string') {
      return { code: parsed.error.code, message: parsed.error.message, field: parsed.error.field };
    }
  } catch {
    // Not JSON (e.g. a bare 404 from something that is not sigil-server): described below instead.
  }
  return badBody(status, text);
}

function badBody(status: number, text: string): WireError {
  const snippet = text.length > 120 ? `${text.slice(0, 120)}…` : text;
  return { code: UNEXPECTED_RESPONSE, message: `server answered ${status} with ${JSON.stringify(snippet)}` };
}

function unreachable(socketPath: string, err: unknown): SigilError {
  const code = (err as { code?: string }).code;
  const why =
    code === 'ENOENT'
      ? 'socket does not exist'
      : code === 'ECONNREFUSED'
        ? 'connection refused'
        : code === 'EACCES'
          ? 'permission denied'
          : (err as Error).message;
  return new SigilError(
    'ERR_UNAVAILABLE',
    `cannot reach the admin API at ${socketPath}: ${why} (is sigil-server running? check --admin-socket)`,
    { field: 'admin-socket', cause: err },
  );
}
