// The gRPC-over-HTTP/2 client the SDK needs, on node:http2: unary and server-streaming calls, no
// compression, no deadlines, one h2c connection reused by every call and reopened after it closes.
// The Workload API is that small a contract, and @grpc/grpc-js (with its channel, resolver and
// load-balancing machinery) cost each sidecar about 2 MB of resident memory for it. Wire rules from
// grpc/doc/PROTOCOL-HTTP2.md: length-prefixed messages, status in trailers or in a Trailers-Only
// response, HTTP statuses mapped as in http-grpc-status-mapping.md.
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { WorkloadEndpoint } from './address.js';

/** gRPC status codes (grpc/doc/statuscodes.md), index = code. */
export const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;
export type GrpcStatusName = (typeof GRPC_STATUS_NAMES)[number];
const code = (name: GrpcStatusName): number => GRPC_STATUS_NAMES.indexOf(name);

/** A call that ended with a status other than OK (or never got one). */
export class GrpcCallError extends Error {
  override readonly name = 'GrpcCallError';
  constructor(
    readonly code: number,
    readonly details: string,
    cause?: unknown,
  ) {
    super(`${GRPC_STATUS_NAMES[code] ?? code}: ${details}`, cause === undefined ? undefined : { cause });
  }
}

/** grpc-js's default receive limit; a larger message ends the call with RESOURCE_EXHAUSTED. */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const FRAME_HEADER_BYTES = 5;
const { NGHTTP2_CANCEL } = http2.constants;

interface Connection {
  readonly session: ClientHttp2Session;
  /** Open calls; the connection keeps the process alive only while there are some. */
  calls: number;
}

export class GrpcTransport {
  private connection: Connection | undefined;
  private closed = false;
  private readonly authority: string;

  constructor(
    private readonly endpoint: WorkloadEndpoint,
    private readonly metadata: Readonly<Record<string, string>>,
    /** Vets a unix socket path before each new connection; what it throws fails the call as it is. */
    private readonly checkSocket?: (socketPath: string) => void,
  ) {
    this.authority =
      endpoint.kind === 'unix'
        ? 'localhost'
        : endpoint.host.includes(':')
          ? `[${endpoint.host}]:${endpoint.port}`
          : `${endpoint.host}:${endpoint.port}`;
  }

  /**
   * Runs one call: sends `request`, hands each response message to `onMessage` and resolves on
   * status OK. Rejects with a GrpcCallError for any other status, CANCELLED once `signal` aborts,
   * or whatever `onMessage` (the call is then cancelled) or `checkSocket` threw.
   */
  call(
    path: string,
    request: Buffer,
    onMessage: (message: Buffer) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new GrpcCallError(code('CANCELLED'), 'cancelled by the caller'));
      if (this.closed) return reject(new GrpcCallError(code('UNAVAILABLE'), 'the client is closed'));
      const refusal = this.socketRefusal();
      if (refusal !== undefined) return reject(refusal);
      let connection: Connection;
      let stream: http2.ClientHttp2Stream;
      try {
        connection = this.connect();
        stream = connection.session.request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          ...this.metadata,
        });
      } catch (err) {
        return reject(new GrpcCallError(code('UNAVAILABLE'), (err as Error).message, err));
      }
      if (connection.calls++ === 0) connection.session.ref();

      let outcome: GrpcCallError | null | undefined; // null: OK; undefined: no status yet
      let failure: unknown;
      let streamError: Error | undefined;
      let pending: Buffer = Buffer.alloc(0);
      const cancel = () => stream.close(NGHTTP2_CANCEL);
      const end = (status: GrpcCallError | null) => {
        if (outcome === undefined && failure === undefined) outcome = status;
        if (status !== null) cancel();
      };
      signal?.addEventListener('abort', cancel, { once: true });

      stream.on('response', (headers: IncomingHttpHeaders) => {
        const httpStatus = Number(headers[':status']);
        if (httpStatus !== 200) return end(fromHttpStatus(httpStatus));
        if (headers['grpc-status'] !== undefined) return end(statusOf(headers)); // Trailers-Only
        if (!String(headers['content-type'] ?? '').startsWith('application/grpc')) {
          end(new GrpcCallError(code('UNKNOWN'), `unexpected content-type ${headers['content-type']}`));
        }
      });
      stream.on('data', (chunk: Buffer) => {
        if (outcome !== undefined || failure !== undefined) return;
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        while (pending.length >= FRAME_HEADER_BYTES) {
          if (pending[0] !== 0) {
            return end(new GrpcCallError(code('INTERNAL'), 'compressed message, but none was negotiated'));
          }
          const length = pending.readUInt32BE(1);
          if (length > MAX_MESSAGE_BYTES) {
            return end(
              new GrpcCallError(
                code('RESOURCE_EXHAUSTED'),
                `received message larger than max (${length} vs ${MAX_MESSAGE_BYTES})`,
              ),
            );
          }
          if (pending.length < FRAME_HEADER_BYTES + length) return;
          const message = pending.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
          pending = pending.subarray(FRAME_HEADER_BYTES + length);
          try {
            onMessage(message);
          } catch (err) {
            failure = err;
            cancel();
            return;
          }
        }
      });
      stream.on('trailers', (trailers: IncomingHttpHeaders) => end(statusOf(trailers)));
      stream.on('error', (err: Error) => {
        streamError = err;
      });
      stream.on('close', () => {
        signal?.removeEventListener('abort', cancel);
        if (--connection.calls === 0) connection.session.unref();
        if (failure !== undefined) return reject(failure);
        if (outcome === null && pending.length > 0) {
          return reject(new GrpcCallError(code('INTERNAL'), 'the stream ended inside a message'));
        }
        if (outcome === null) return resolve();
        if (outcome !== undefined) return reject(outcome);
        if (signal?.aborted) return reject(new GrpcCallError(code('CANCELLED'), 'cancelled by the caller'));
        // No status at all: the connection failed or the server reset the stream.
        const why = streamError?.cause ?? streamError;
        reject(
          new GrpcCallError(
            code('UNAVAILABLE'),
            why instanceof Error ? why.message : `stream closed without a status (code ${stream.rstCode})`,
            why,
          ),
        );
      });
      stream.end(frame(request));
    });
  }

  /** A unary call: exactly one response message. */
  async unary(path: string, request: Buffer, signal?: AbortSignal): Promise<Buffer> {
    const messages: Buffer[] = [];
    await this.call(path, request, (message) => messages.push(message), signal);
    if (messages.length !== 1) {
      throw new GrpcCallError(code('INTERNAL'), `expected one response message, got ${messages.length}`);
    }
    return messages[0]!;
  }

  /** Closes the connection once its calls have ended; later calls fail with UNAVAILABLE. */
  close(): void {
    this.closed = true;
    this.connection?.session.close();
    this.connection = undefined;
  }

  /** What `checkSocket` throws when this call would open a new unix connection; undefined to go ahead. */
  private socketRefusal(): unknown {
    if (this.endpoint.kind !== 'unix' || this.checkSocket === undefined || this.openConnection()) return;
    try {
      this.checkSocket(this.endpoint.path);
    } catch (err) {
      return err;
    }
  }

  private openConnection(): Connection | undefined {
    const current = this.connection;
    return current && !current.session.closed && !current.session.destroyed ? current : undefined;
  }

  private connect(): Connection {
    const current = this.openConnection();
    if (current) return current;
    const endpoint = this.endpoint;
    const session =
      endpoint.kind === 'unix'
        ? http2.connect(`http://${this.authority}`, { createConnection: () => netConnect(endpoint.path) })
        : http2.connect(`http://${this.authority}`);
    const connection: Connection = { session, calls: 0 };
    const forget = () => {
      if (this.connection === connection) this.connection = undefined;
    };
    // Failures reach the calls through their streams; the session only has to be replaced.
    session.on('error', forget);
    session.on('close', forget);
    // After GOAWAY the server takes no new streams here; open calls finish on this connection.
    session.on('goaway', forget);
    session.unref();
    this.connection = connection;
    return connection;
  }
}

function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, FRAME_HEADER_BYTES);
  return out;
}

/** grpc-status / grpc-message of trailers (or of a Trailers-Only response); null for OK. */
function statusOf(headers: IncomingHttpHeaders): GrpcCallError | null {
  const raw = headers['grpc-status'];
  const status = Number(raw);
  if (raw === undefined || !Number.isInteger(status) || status < 0 || status >= GRPC_STATUS_NAMES.length) {
    return new GrpcCallError(code('UNKNOWN'), `invalid grpc-status ${JSON.stringify(raw)}`);
  }
  if (status === 0) return null;
  const message = String(headers['grpc-message'] ?? '');
  let details = message;
  try {
    details = decodeURIComponent(message);
  } catch {
    // Not valid percent-encoding: show it as sent.
  }
  return new GrpcCallError(status, details);
}

/** HTTP statuses of a response that is not gRPC, as grpc's http-grpc-status-mapping.md maps them. */
const HTTP_STATUS_CODES: ReadonlyMap<number, GrpcStatusName> = new Map([
  [400, 'INTERNAL'],
  [401, 'UNAUTHENTICATED'],
  [403, 'PERMISSION_DENIED'],
  [404, 'UNIMPLEMENTED'],
  [429, 'UNAVAILABLE'],
  [502, 'UNAVAILABLE'],
  [503, 'UNAVAILABLE'],
  [504, 'UNAVAILABLE'],
]);

function fromHttpStatus(httpStatus: number): GrpcCallError {
  return new GrpcCallError(code(HTTP_STATUS_CODES.get(httpStatus) ?? 'UNKNOWN'), `HTTP status ${httpStatus}`);
}
