// Clients we did not write: openssl s_client with an SVID straight to an inbound listener, and curl
// through an outbound listener.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { encodePem } from '../spiffe/pem.js';
import { startInbound } from './inbound/index.js';
import {
  CLIENT_ID,
  cleanups,
  makeSide,
  RecordingAuthorizer,
  startHttpApp,
  startPair,
  tdA,
  useProxyTestHarness,
} from './pair.test-support.js';

useProxyTestHarness();
const run = promisify(execFile);

describe('real clients', () => {
  it('openssl s_client with a client SVID gets through the inbound listener', async () => {
    const app = await startHttpApp();
    const server = makeSide(tdA.mint('/server'));
    const inbound = await startInbound({
      name: 'in',
      listen: { host: '127.0.0.1', port: 0 },
      protocol: 'http',
      app: { host: '127.0.0.1', port: app.port },
      mode: 'strict',
      identity: server.identity,
      authorizer: new RecordingAuthorizer(),
      metrics: server.metrics,
      logger: server.logger,
    });
    cleanups.push(() => inbound.close());
    const dir = mkdtempSync(join(tmpdir(), 'sigil-proxy-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const svid = tdA.mint('/openssl');
    writeFileSync(join(dir, 'key.pem'), svid.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'cert.pem'), encodePem('CERTIFICATE', svid.certificates[0]!));
    writeFileSync(join(dir, 'ca.pem'), encodePem('CERTIFICATE', tdA.bundle.x509Authorities[0]!));
    const child = spawn(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${inbound.address.port}`,
        '-cert',
        join(dir, 'cert.pem'),
        '-key',
        join(dir, 'key.pem'),
        '-CAfile',
        join(dir, 'ca.pem'),
        '-quiet',
        '-ign_eof',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c));
    child.stdin.end('GET /via-openssl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await new Promise<void>((resolve) => child.on('close', () => resolve()));
    expect(output).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(output).toContain('spiffe://a.test/openssl');
  });

  it('curl through the outbound listener', async () => {
    const app = await startHttpApp();
    const pair = await startPair({ protocol: 'http', appPort: app.port });
    const { stdout } = await run('curl', [
      '-sS',
      '-i',
      '-H',
      'X-Sigil-Peer-Id: forged',
      `http://127.0.0.1:${pair.outbound.address.port}/via-curl`,
    ]);
    expect(stdout).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(stdout).toContain(`"x-sigil-peer-id","${CLIENT_ID}"`);
    expect(stdout).not.toContain('forged');
  });
});
