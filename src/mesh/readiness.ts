// Waiting for a component to be up, by asking it the way an orchestrator would: an HTTP health
// endpoint that answers 200: the server's /readyz and the agent's /healthz on their admin sockets
// (what their `healthcheck` CLIs ask, without a node start per probe), a demo app, a sidecar's
// /ready. Each wait is bounded; the caller races it against the component dying.
import { request } from 'node:http';
import type { Clock } from '../spiffe/clock.js';
import { SigilError } from '../spiffe/errors.js';
import { checkSocketForClient } from '../spiffe/socket-dir.js';

/** One probe of an HTTP endpoint may take this long; a hung one counts as not ready. */
const PROBE_TIMEOUT_MS = 2_000;

export interface PollOptions {
  readonly clock: Clock;
  /** Give up after this long, in milliseconds. */
  readonly timeoutMs: number;
  /** Pause between probes, in milliseconds. */
  readonly intervalMs: number;
  /** What is awaited, for the error: `the server to be healthy`. */
  readonly what: string;
  /** Ends the wait early (it then rejects with the signal's reason). */
  readonly signal?: AbortSignal;
}

/** Resolves once `check` returns true; rejects with ERR_UNAVAILABLE after `timeoutMs`. */
export async function pollUntil(check: () => Promise<boolean>, options: PollOptions): Promise<void> {
  const { clock } = options;
  const deadline = clock.nowMs() + options.timeoutMs;
  for (;;) {
    options.signal?.throwIfAborted();
    if (await check()) return;
    if (clock.nowMs() >= deadline) {
      throw new SigilError(
        'ERR_UNAVAILABLE',
        `gave up waiting for ${options.what} after ${Math.round(options.timeoutMs / 1000)}s`,
        { reason: 'not-ready' },
      );
    }
    await new Promise<void>((resolve) => clock.setTimer(options.intervalMs, resolve));
  }
}

/** Where an HTTP endpoint listens: TCP, or an admin Unix socket (checked as every Sigil client checks it). */
export type HttpTarget =
  | { readonly host: string; readonly port: number }
  | { readonly socketPath: string; readonly uid: number };

/**
 * GET `path` on `target`; resolves with the status and body, or null when nothing answered. Throws
 * ERR_SOCKET_UNSAFE for a socket someone else could have planted: no point polling that.
 */
export function httpGet(target: HttpTarget, path: string): Promise<{ status: number; body: string } | null> {
  if ('socketPath' in target)
    checkSocketForClient(target.socketPath, { uid: target.uid, field: 'admin_socket' });
  return new Promise((resolve) => {
    const req = request({ ...target, path, method: 'GET', timeout: PROBE_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    // Refused, reset or timed out: not up (yet); the poll asks again.
    req.on('error', () => resolve(null));
    req.end();
  });
}

/** True when GET answers 200. */
export async function isHttpOk(target: HttpTarget, path: string): Promise<boolean> {
  return (await httpGet(target, path))?.status === 200;
}
