// A bare HTTP/2 client for attack tests: writes frames itself (no node:http2, whose nghttp2 would
// queue streams beyond the server's limit or refuse them locally), so what comes back is the
// server's own doing. Request headers are HPACK literals; response headers are not decoded, only
// frame types per stream (DATA, HEADERS, RST_STREAM with its code) are recorded.
import net from 'node:net';
import tls from 'node:tls';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const REFUSED_STREAM = 0x7;

export interface RawH2Options {
  /** Client certificate chain and key (PEM), for calls that need an agent. */
  readonly cert?: string;
  readonly key?: string;
  /**
   * SETTINGS_INITIAL_WINDOW_SIZE announced for our streams; 0 lets the server send no DATA at all.
   * The client never sends WINDOW_UPDATE, so a small window is a client that stops reading.
   */
  readonly initialWindowSize?: number;
}

export interface StreamRecord {
  dataBytes: number;
  headers: number;
  rstCode?: number;
}

export class RawH2Connection {
  readonly streams = new Map<number, StreamRecord>();
  /** The server's SETTINGS_MAX_CONCURRENT_STREAMS, once its SETTINGS arrived. */
  maxConcurrentStreams: number | undefined;
  goaway = false;
  closed = false;
  private buffered = Buffer.alloc(0);

  private constructor(
    private readonly socket: net.Socket,
    options: RawH2Options = {},
  ) {
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {
      // Recorded through 'close'; the test asserts on what the server sent.
    });
    const settings = Buffer.alloc(options.initialWindowSize === undefined ? 0 : 6);
    if (options.initialWindowSize !== undefined) {
      settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 0);
      settings.writeUInt32BE(options.initialWindowSize, 2);
    }
    socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, settings)]));
  }

  static open(socketPath: string): Promise<RawH2Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath, () => resolve(new RawH2Connection(socket)));
      socket.once('error', reject);
    });
  }

  /** Over TLS (ALPN h2) to `host:port`, with no server check, and a client certificate if given. */
  static openTls(host: string, port: number, options: RawH2Options = {}): Promise<RawH2Connection> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect(
        {
          host,
          port,
          ALPNProtocols: ['h2'],
          rejectUnauthorized: false,
          ...(options.cert ? { cert: options.cert, key: options.key } : {}),
        },
        () => resolve(new RawH2Connection(socket, options)),
      );
      socket.once('error', reject);
    });
  }

  /** Opens stream `id` (odd, increasing) with a gRPC call to `path` carrying `message` (unframed). */
  call(id: number, path: string, message: Buffer, headers: Record<string, string> = {}): void {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(message.length, 1);
    this.socket.write(
      Buffer.concat([
        this.headersFrame(id, path, headers),
        frame(DATA, END_STREAM, id, Buffer.concat([prefix, message])),
      ]),
    );
  }

  /** Opens stream `id` with a gRPC call to `path` and sends nothing more: the call stays open. */
  openCall(id: number, path: string, headers: Record<string, string> = {}): void {
    this.socket.write(this.headersFrame(id, path, headers));
  }

  private headersFrame(id: number, path: string, headers: Record<string, string>): Buffer {
    const block = hpackLiterals({
      ':method': 'POST',
      ':scheme': 'http',
      ':path': path,
      ':authority': 'localhost',
      'content-type': 'application/grpc',
      te: 'trailers',
      'workload.spiffe.io': 'true',
      ...headers,
    });
    this.streams.set(id, { dataBytes: 0, headers: 0 });
    return frame(HEADERS, END_HEADERS, id, block);
  }

  close(): void {
    this.socket.destroy();
  }

  private read(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 9) {
      const length = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < 9 + length) return;
      const type = this.buffered[3]!;
      const flags = this.buffered[4]!;
      const id = this.buffered.readUInt32BE(5) & 0x7fffffff;
      const payload = this.buffered.subarray(9, 9 + length);
      this.buffered = this.buffered.subarray(9 + length);
      const stream = this.streams.get(id);
      if (type === SETTINGS && !(flags & ACK)) {
        for (let at = 0; at + 6 <= payload.length; at += 6) {
          if (payload.readUInt16BE(at) === SETTINGS_MAX_CONCURRENT_STREAMS) {
            this.maxConcurrentStreams = payload.readUInt32BE(at + 2);
          }
        }
        this.socket.write(frame(SETTINGS, ACK, 0, Buffer.alloc(0)));
      } else if (type === PING && !(flags & ACK)) {
        this.socket.write(frame(PING, ACK, 0, payload));
      } else if (type === GOAWAY) {
        this.goaway = true;
      } else if (stream && type === DATA) {
        stream.dataBytes += payload.length;
      } else if (stream && type === HEADERS) {
        stream.headers++;
      } else if (stream && type === RST_STREAM) {
        stream.rstCode = payload.readUInt32BE(0);
      }
    }
  }
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK "literal header field without indexing, new name" for each header (RFC 7541 §6.2.2). */
function hpackLiterals(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    parts.push(Buffer.from([0]), hpackString(name), hpackString(value));
  }
  return Buffer.concat(parts);
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text);
  return Buffer.concat([hpackInteger(bytes.length, 7), bytes]);
}

/** An integer with an N-bit prefix (RFC 7541 §5.1); the flag bits above the prefix are 0. */
function hpackInteger(value: number, prefixBits: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([value]);
  const out = [max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}
