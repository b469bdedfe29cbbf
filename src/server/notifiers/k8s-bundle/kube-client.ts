// A minimal Kubernetes API client: one JSON request at a time over HTTPS, authenticated with the
// service account token, verified against the cluster CA. Deliberately small (no watch, no list
// paging, no kubeconfig): the bundle notifier needs GET-free PATCH and POST of one ConfigMap.
// The token is read on every request because the kubelet rotates projected tokens under us.
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import type { Clock } from '../../../spiffe/clock.js';
import { SigilError } from '../../../spiffe/errors.js';

/** A ConfigMap is at most 1 MiB; its echo in a response, with metadata, fits well within 2 MiB. */
export const MAX_RESPONSE_BYTES = 2 * 1024 * 1024;
/** Tokens are a few KiB; a file much larger than that is not a token. */
const MAX_TOKEN_BYTES = 64 * 1024;
/** Whole request, connect to last byte: the API server answers a ConfigMap write in milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

export interface KubeClientOptions {
  /** https://HOST:PORT */
  readonly apiServer: string;
  readonly tokenPath: string;
  readonly caPath: string;
  readonly clock: Clock;
  readonly timeoutMs?: number;
}

export interface KubeResponse {
  readonly status: number;
  readonly body: unknown;
}

export class KubeClient {
  constructor(private readonly options: KubeClientOptions) {}

  /** Sends `body` as JSON (with `contentType`); any HTTP status resolves, transport failures reject. */
  async send(
    method: 'PATCH' | 'POST',
    path: string,
    body: unknown,
    contentType: string,
    signal: AbortSignal,
  ): Promise<KubeResponse> {
    const { apiServer, tokenPath, caPath, clock } = this.options;
    const [token, ca] = await Promise.all([readToken(tokenPath), readCa(caPath)]);
    const payload = Buffer.from(JSON.stringify(body));
    const url = new URL(path, apiServer);
    return new Promise<KubeResponse>((resolve, reject) => {
      const fail = (message: string, cause?: unknown) => {
        cancelTimer();
        req.destroy();
        reject(
          new SigilError('ERR_UNAVAILABLE', `kubernetes api: ${method} ${url.pathname}: ${message}`, {
            cause,
          }),
        );
      };
      const req = request(url, {
        method,
        ca,
        headers: {
          // Never logged: errors below carry the method and path only.
          authorization: `Bearer ${token}`,
          'content-type': contentType,
          'content-length': payload.length,
          accept: 'application/json',
        },
      });
      const cancelTimer = clock.setTimer(this.options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, () =>
        fail(`no answer within ${this.options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS} ms`),
      );
      const onAbort = () => fail('aborted (server stopping)');
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal.removeEventListener('abort', onAbort));
      req.on('error', (err) => fail(err.message, err));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) return fail(`response larger than ${MAX_RESPONSE_BYTES} bytes`);
          chunks.push(chunk);
        });
        res.on('error', (err) => fail(err.message, err));
        res.on('end', () => {
          cancelTimer();
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // Not JSON (a proxy's HTML error page): the caller reports the status and this text.
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.end(payload);
    });
  }
}

async function readToken(file: string): Promise<string> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (err) {
    throw new SigilError(
      'ERR_UNAVAILABLE',
      `kubernetes api: cannot read token_path ${file}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const token = raw.toString('utf8').trim();
  if (token === '' || raw.length > MAX_TOKEN_BYTES || /\s/.test(token)) {
    throw new SigilError(
      'ERR_UNAVAILABLE',
      `kubernetes api: token_path ${file} does not hold a bearer token (empty, over ${MAX_TOKEN_BYTES} bytes or with whitespace inside)`,
    );
  }
  return token;
}

async function readCa(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new SigilError(
      'ERR_UNAVAILABLE',
      `kubernetes api: cannot read ca_path ${file}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** The Kubernetes Status message of an error response, trimmed, for logs and errors. */
export function statusMessage(response: KubeResponse): string {
  const body = response.body;
  const message =
    typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string'
      ? (body as { message: string }).message
      : String(body);
  return `HTTP ${response.status}: ${message.slice(0, 200)}`;
}
