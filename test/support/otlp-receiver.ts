// A small OTLP/HTTP trace receiver for tests: it accepts POSTs of ExportTraceServiceRequest in
// protobuf and decodes them with OpenTelemetry's own generated definitions (the protobufjs root
// that @opentelemetry/otlp-transformer shipped, installed as `otlp-proto-definitions`), never with
// our exporter's code, so a span that decodes here is what a real collector would read.
import http from 'node:http';
import { createRequire } from 'node:module';
import type net from 'node:net';

interface ProtoType {
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown, options: Record<string, unknown>): unknown;
}

const root = createRequire(import.meta.url)('otlp-proto-definitions/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: ProtoType } } } } };
};
const REQUEST = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

/** OTLP's Span.SpanKind values. */
export const OTLP_SPAN_KIND = { SERVER: 2, CLIENT: 3 } as const;
/** OTLP's Status.StatusCode values. */
export const OTLP_STATUS = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly traceState: string;
  readonly name: string;
  readonly kind: number;
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  readonly status: { readonly code: number; readonly message: string };
  readonly resource: Readonly<Record<string, string | number | boolean>>;
  readonly scope: string;
}

export interface OtlpReceiver {
  readonly port: number;
  /** http://127.0.0.1:PORT/v1/traces */
  readonly url: string;
  readonly spans: readonly ReceivedSpan[];
  /** Export requests received (each a batch). */
  readonly requests: number;
  /** Stops listening (the collector is down); `start` listens again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

interface KeyValue {
  key: string;
  value?: { stringValue?: string; intValue?: string; boolValue?: boolean; doubleValue?: number };
}

function attributes(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    if (value?.stringValue !== undefined) out[key] = value.stringValue;
    else if (value?.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value?.boolValue !== undefined) out[key] = value.boolValue;
    else if (value?.doubleValue !== undefined) out[key] = value.doubleValue;
  }
  return out;
}

const hex = (bytes: string | undefined) => Buffer.from(bytes ?? '', 'base64').toString('hex');

/** Decodes one ExportTraceServiceRequest body into spans. */
export function decodeTraceRequest(body: Uint8Array): ReceivedSpan[] {
  const message = REQUEST.toObject(REQUEST.decode(body), {
    longs: String,
    bytes: String,
    defaults: true,
  }) as {
    resourceSpans: Array<{
      resource?: { attributes: KeyValue[] };
      scopeSpans: Array<{
        scope?: { name: string };
        spans: Array<{
          traceId: string;
          spanId: string;
          parentSpanId: string;
          traceState: string;
          name: string;
          kind: number;
          startTimeUnixNano: string;
          endTimeUnixNano: string;
          attributes: KeyValue[];
          status?: { code: number; message: string };
        }>;
      }>;
    }>;
  };
  const spans: ReceivedSpan[] = [];
  for (const rs of message.resourceSpans) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans) {
      for (const s of ss.spans) {
        spans.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          traceState: s.traceState,
          name: s.name,
          kind: s.kind,
          startNs: BigInt(s.startTimeUnixNano),
          endNs: BigInt(s.endTimeUnixNano),
          attributes: attributes(s.attributes),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return spans;
}

/** Starts a receiver on 127.0.0.1 (any free port). */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  let requests = 0;
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (
        req.method !== 'POST' ||
        req.url !== '/v1/traces' ||
        req.headers['content-type'] !== 'application/x-protobuf'
      ) {
        res.writeHead(400).end();
        return;
      }
      requests++;
      spans.push(...decodeTraceRequest(Buffer.concat(chunks)));
      // An empty ExportTraceServiceResponse: full success.
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' }).end();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  const stop = async () => {
    if (!server.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  await listen();
  return {
    port,
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    get requests() {
      return requests;
    },
    stop,
    start: listen,
    close: stop,
  };
}
