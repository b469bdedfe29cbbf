// Which llhttp is cheaper to drive from JavaScript for the relay: Node's native binding (the one
// node:http runs, reached through `_http_common`; llhttp-relay/native-parser.ts) or undici's
// WebAssembly build (node_modules/undici/lib/llhttp/), driven the way undici's client-h1.js drives
// it (copy into wasm memory, one callback per field and value, strings made in JavaScript). Both
// parse the same messages and hand over the same thing: method, target or status, header strings,
// body bytes. CPU time per message, median of runs; a micro-benchmark, no sockets.
//   tsc -p tsconfig.json && node dist/bench/llhttp-parser-cost.js
import { createRequire } from 'node:module';
import { type MessageHead, MessageParser } from './llhttp-relay/native-parser.js';

const require = createRequire(import.meta.url);
const { TYPE } = require('undici/lib/llhttp/constants.js') as { TYPE: { REQUEST: number; RESPONSE: number } };

const REQUEST = Buffer.from(
  'GET /api/items?page=2 HTTP/1.1\r\nHost: app.local\r\nUser-Agent: wrk\r\nAccept: */*\r\n' +
    'X-Request-Id: 6f1c2b7e-95a4-4c55-8d3e-0c2a1d8f9b10\r\nTraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n',
);
const RESPONSE = Buffer.from(
  'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\ndate: Mon, 07 Dec 2026 22:00:00 GMT\r\n\r\nok',
);
/** The slice of the WebAssembly API used here (this project's TypeScript lib has no DOM types). */
interface Wasm {
  Module: new (bytes: Buffer) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const { Module, Instance } = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;

const MESSAGES_PER_RUN = 200_000;
const RUNS = 7;

type Sink = { heads: number; bytes: number };

function nativeParse(kind: 'request' | 'response', message: Buffer, sink: Sink): () => void {
  const parser = new MessageParser(kind, {
    onHead: (head: MessageHead) => {
      sink.heads += head.rawHeaders.length + head.url.length;
      return false;
    },
    onBody: (chunk) => {
      sink.bytes += chunk.length;
    },
    onEnd: () => {},
  });
  return () => {
    if (parser.execute(message) !== undefined) throw new Error('native parse failed');
  };
}

/** undici's wasm llhttp, instantiated as client-h1.js does, with callbacks that build the same strings. */
function wasmParse(kind: 'request' | 'response', message: Buffer, sink: Sink): () => void {
  let buffer: Buffer = Buffer.alloc(0);
  let bufferPtr = 0;
  let headers: string[] = [];
  let url = '';
  const text = (at: number, len: number) => buffer.toString('latin1', at - bufferPtr, at - bufferPtr + len);
  const module = new Module(require('undici/lib/llhttp/llhttp_simd-wasm.js') as Buffer);
  const instance = new Instance(module, {
    env: {
      wasm_on_url: (_p: number, at: number, len: number) => {
        url = text(at, len);
        return 0;
      },
      wasm_on_status: () => 0,
      wasm_on_message_begin: () => 0,
      wasm_on_header_field: (_p: number, at: number, len: number) => {
        headers.push(text(at, len));
        return 0;
      },
      wasm_on_header_value: (_p: number, at: number, len: number) => {
        headers.push(text(at, len));
        return 0;
      },
      wasm_on_headers_complete: () => {
        sink.heads += headers.length + url.length;
        headers = [];
        return 0;
      },
      wasm_on_body: (_p: number, _at: number, len: number) => {
        sink.bytes += len;
        return 0;
      },
      wasm_on_message_complete: () => 0,
    },
  });
  const llhttp = instance.exports as unknown as {
    memory: { buffer: ArrayBuffer };
    malloc(size: number): number;
    llhttp_alloc(type: number): number;
    llhttp_execute(parser: number, data: number, len: number): number;
  };
  const ptr = llhttp.llhttp_alloc(kind === 'request' ? TYPE.REQUEST : TYPE.RESPONSE);
  bufferPtr = llhttp.malloc(4096);
  return () => {
    buffer = message;
    new Uint8Array(llhttp.memory.buffer, bufferPtr, 4096).set(message);
    if (llhttp.llhttp_execute(ptr, bufferPtr, message.length) !== 0) throw new Error('wasm parse failed');
  };
}

function nsPerMessage(parseOne: () => void): number {
  const samples: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const before = process.cpuUsage();
    for (let i = 0; i < MESSAGES_PER_RUN; i++) parseOne();
    const used = process.cpuUsage(before);
    samples.push(((used.user + used.system) * 1000) / MESSAGES_PER_RUN);
  }
  return samples.sort((a, b) => a - b)[RUNS >> 1]!;
}

const sink: Sink = { heads: 0, bytes: 0 };
for (const [kind, message] of [
  ['request', REQUEST],
  ['response', RESPONSE],
] as const) {
  const native = nsPerMessage(nativeParse(kind, message, sink));
  const wasm = nsPerMessage(wasmParse(kind, message, sink));
  console.log(
    `${kind.padEnd(8)} (${message.length} bytes): native ${native.toFixed(0)} ns, wasm ${wasm.toFixed(0)} ns per message (CPU, median of ${RUNS} runs of ${MESSAGES_PER_RUN.toLocaleString('en')})`,
  );
}
if (sink.heads === 0) throw new Error('nothing parsed');
