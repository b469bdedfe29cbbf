// Helpers for attack tests on the Workload API: hand-made gRPC calls and messages, processes that
// hold idle connections, and what a child prints or how much memory a process holds.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';

/** Lines a child prints, as they come. */
export function linesOf(child: ChildProcess): string[] {
  const lines: string[] = [];
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts.filter((l) => l.trim() !== ''));
  });
  return lines;
}

/** One unary gRPC call with a hand-made body: its status, and how many response bytes came. */
export function grpcCall(
  socketPath: string,
  method: string,
  body: Buffer,
): Promise<{ status: number; message: string; dataBytes: number }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
    session.on('error', reject);
    const stream = session.request({
      ':method': 'POST',
      ':path': `/SpiffeWorkloadAPI/${method}`,
      'content-type': 'application/grpc',
      te: 'trailers',
      'workload.spiffe.io': 'true',
    });
    const outcome = { status: -1, message: '', dataBytes: 0 };
    const readStatus = (headers: http2.IncomingHttpHeaders) => {
      if (headers['grpc-status'] === undefined) return;
      outcome.status = Number(headers['grpc-status']);
      outcome.message = decodeURIComponent(String(headers['grpc-message'] ?? ''));
    };
    stream.on('response', readStatus);
    stream.on('trailers', readStatus);
    stream.on('data', (chunk: Buffer) => {
      outcome.dataBytes += chunk.length;
    });
    stream.on('error', () => {
      // A reset after the status: the status is what the test looks at.
    });
    stream.on('close', () => {
      session.destroy();
      resolve(outcome);
    });
    stream.end(body);
  });
}

/** A gRPC length-prefixed message (the SDK's framing is private to its transport). */
export function framed(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** Resident memory of `pid`, in MiB. */
export function rssMib(pid: number): number {
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return kb / 1024;
}

/** A node process as `uid` holding `count` idle connections; prints "open N" then "closed N" as they drop. */
export function holdIdleConnections(uid: number, socketPath: string, count: number) {
  const script = `
    const net = require('node:net');
    const [socketPath, count] = [process.argv[1], Number(process.argv[2])];
    let closed = 0;
    (async () => {
      for (let i = 0; i < count; i++) {
        await new Promise((resolve) => {
          const s = net.connect(socketPath, resolve);
          s.resume(); // reads (and drops) the agent's SETTINGS, and so sees the close
          s.on('error', () => {});
          s.on('close', () => console.log('closed', ++closed));
        });
      }
      console.log('open', count);
    })();
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['-e', script, socketPath, String(count)], {
    uid,
    gid: uid,
    cwd: '/',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = linesOf(child);
  const last = (word: string) =>
    Number(
      lines
        .filter((l) => l.startsWith(word))
        .at(-1)
        ?.split(' ')[1] ?? 0,
    );
  return { child, opened: () => last('open'), closed: () => last('closed') };
}
