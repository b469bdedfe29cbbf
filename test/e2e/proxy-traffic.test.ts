// The sidecars carry traffic over mTLS between real processes (see test/support/proxy-mesh.ts):
// HTTP/1.1 with the caller's identity, opaque TCP and HTTP/2, gRPC; they refuse an upstream with
// the wrong SPIFFE ID and callers without an SVID, and keep serving while SVIDs rotate.
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/agent-harness.js';
import { runCommand } from '../support/harness.js';
import { backLogs, ECHO_SERVICE, frontLogs, get, ports, TD, useProxyMesh } from '../support/proxy-mesh.js';

useProxyMesh();

describe('sigil-proxy sidecars', () => {
  it('carries HTTP/1.1 over mTLS and tells the app who called, stripping forged identity headers', async () => {
    const res = await get(ports.outHttp!, '/hello', {
      'x-sigil-peer-id': `${TD}/forged`,
      'X-Custom-Case': 'kept',
    });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.peer).toBe(`${TD}/frontend-proxy`);
    expect(body.xfcc).toMatch(
      new RegExp(`^By=${TD}/backend-proxy;Hash=[0-9a-f]{64};URI=${TD}/frontend-proxy$`),
    );
    expect(body.raw).toContain('X-Custom-Case');
    expect(backLogs()).toMatch(/strip/i);
  });

  it('carries opaque TCP and HTTP/2', async () => {
    const echoed = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(ports.outTcp!, '127.0.0.1', () => socket.write('ping over mTLS'));
      let data = '';
      socket.on('data', (c) => {
        data += c;
        if (data === 'ping over mTLS') socket.end();
      });
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(echoed).toBe('ping over mTLS');
    const h2 = http2.connect(`http://127.0.0.1:${ports.outH2}`);
    const body = await new Promise<string>((resolve, reject) => {
      const stream = h2.request({ ':path': '/' });
      let data = '';
      stream.on('data', (c) => {
        data += c;
      });
      stream.on('end', () => resolve(data));
      stream.on('error', reject);
    });
    h2.close();
    expect(body).toBe('h2 ok');
  });

  it('carries gRPC, unary and streaming, through the HTTP/2 pipe', async () => {
    const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
    const client = new Client(`127.0.0.1:${ports.outGrpc}`, grpc.credentials.createInsecure()) as unknown as {
      Say(req: Buffer, cb: (err: grpc.ServiceError | null, res: Buffer) => void): void;
      Count(req: Buffer): grpc.ClientReadableStream<Buffer>;
      close(): void;
    };
    const said = await new Promise<string>((resolve, reject) =>
      client.Say(Buffer.from('hi'), (err, res) => (err ? reject(err) : resolve(res.toString()))),
    );
    expect(said).toBe('echo:hi');
    const counted = await new Promise<string[]>((resolve, reject) => {
      const items: string[] = [];
      const stream = client.Count(Buffer.alloc(0));
      stream.on('data', (b: Buffer) => items.push(b.toString()));
      stream.on('end', () => resolve(items));
      stream.on('error', reject);
    });
    expect(counted).toEqual(['1', '2', '3']);
    client.close();
  });

  it('fails hard when the upstream presents an unexpected SPIFFE ID', async () => {
    const started = JSON.parse(
      frontLogs()
        .split('\n')
        .find((l) => l.includes('"msg":"Sigil proxy started"'))!,
    );
    const res = await get(started.listeners.wrong, '/hello');
    expect(res.status).toBe(502);
    await waitFor(
      () =>
        /"destination_id":"spiffe:\/\/example.org\/backend-proxy"[^\n]*"msg":"Upstream identity refused"/.test(
          frontLogs(),
        ),
      10_000,
      () => `no refusal naming both IDs:\n${frontLogs()}`,
    );
    expect(frontLogs()).toContain(`${TD}/someone-else`);
  });

  it('refuses callers without an SVID (openssl s_client, plain curl)', async () => {
    const ssl = await runCommand('bash', [
      '-c',
      `echo | timeout 10 openssl s_client -connect 127.0.0.1:${ports.inHttp} 2>&1; true`,
    ]);
    expect(ssl.stdout).toMatch(/URI:spiffe:\/\/example.org\/backend-proxy|backend-proxy|CONNECTED/);
    const curl = await runCommand('curl', [
      '-sk',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `https://127.0.0.1:${ports.inHttp}/hello`,
    ]);
    expect(curl.stdout).not.toBe('200');
    const plain = await runCommand('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://127.0.0.1:${ports.inHttp}/hello`,
    ]);
    expect(plain.stdout).not.toBe('200');
  });

  it('keeps every request working while SVIDs rotate (8s TTL)', async () => {
    let ok = 0;
    const failures: string[] = [];
    const deadline = Date.now() + 12_000;
    while (Date.now() < deadline) {
      const res = await get(ports.outHttp!, '/hello').catch((err: Error) => ({
        status: 0,
        body: err.message,
      }));
      if (res.status === 200) ok++;
      else failures.push(`${res.status} ${res.body.slice(0, 100)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(100);
    expect(backLogs()).toMatch(/"msg":"Identity rotated"/);
  }, 30_000);
});
