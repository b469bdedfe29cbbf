// The admin API over TCP: mTLS where only SVIDs of entries marked `admin` get in. curl and
// openssl s_client are the real clients; everything refused leaves the store unchanged.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, runCommand, type ServerProcess, startServerProcess } from '../support/harness.js';
import { ecCertRequest, selfSignedEcCert } from '../support/openssl-cert.js';

const TD = 'example.org';
let server: ServerProcess;
let tmp: { dir: string; cleanup(): void };
let base: string;

function mintTo(dir: string, spiffeId: string) {
  return server.cli('x509', 'mint', '--spiffe-id', spiffeId, '--write', path.join(tmp.dir, dir));
}

function curl(args: string[]) {
  return runCommand('curl', ['-sk', '-o', '-', '-w', '\n%{http_code}', ...args]);
}

function certArgs(dir: string): string[] {
  return ['--cert', path.join(tmp.dir, dir, 'svid.pem'), '--key', path.join(tmp.dir, dir, 'svid.key')];
}

function statusOf(result: { stdout: string }): { status: number; body: string } {
  const lines = result.stdout.trimEnd().split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

beforeAll(async () => {
  tmp = makeTempDir();
  server = await startServerProcess({ trustDomain: TD, adminBind: true });
  base = `https://127.0.0.1:${server.adminAddress!.port}`;
  expect(
    (
      await server.cli(
        'entry',
        'create',
        '--spiffe-id',
        `spiffe://${TD}/ops`,
        '--parent-id',
        `spiffe://${TD}/node1`,
        '--selector',
        'unix:uid:0',
        '--admin',
      )
    ).code,
  ).toBe(0);
  expect(
    (
      await server.cli(
        'entry',
        'create',
        '--spiffe-id',
        `spiffe://${TD}/web`,
        '--parent-id',
        `spiffe://${TD}/node1`,
        '--selector',
        'unix:uid:1',
      )
    ).code,
  ).toBe(0);
  expect((await mintTo('ops', `spiffe://${TD}/ops`)).code).toBe(0);
  expect((await mintTo('web', `spiffe://${TD}/web`)).code).toBe(0);

  // A look-alike: the same SPIFFE ID, signed by a CA that is not in our bundle.
  const foreign = path.join(tmp.dir, 'foreign');
  await runCommand('mkdir', ['-p', foreign]);
  selfSignedEcCert({
    subject: '/O=Evil',
    extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
    keyFile: `${foreign}/ca.key`,
    outFile: `${foreign}/ca.pem`,
  });
  ecCertRequest({ subject: '/O=Evil', keyFile: `${foreign}/svid.key`, outFile: `${foreign}/svid.csr` });
  writeFileSync(
    `${foreign}/ext.cnf`,
    `subjectAltName=URI:spiffe://${TD}/ops\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=critical,CA:FALSE\n`,
  );
  const signed = await runCommand('openssl', [
    'x509',
    '-req',
    '-in',
    `${foreign}/svid.csr`,
    '-CA',
    `${foreign}/ca.pem`,
    '-CAkey',
    `${foreign}/ca.key`,
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    `${foreign}/ext.cnf`,
    '-out',
    `${foreign}/svid.pem`,
  ]);
  expect(signed.code, signed.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  tmp?.cleanup();
});

describe('admin API over mTLS', () => {
  it('lets an admin SVID list and create entries', async () => {
    const list = statusOf(await curl([...certArgs('ops'), `${base}/v1/entries`]));
    expect(list.status).toBe(200);
    expect(JSON.parse(list.body).entries).toHaveLength(2);
    const create = statusOf(
      await curl([
        ...certArgs('ops'),
        '-H',
        'content-type: application/json',
        '-d',
        JSON.stringify({
          spiffe_id: `spiffe://${TD}/db`,
          parent_id: `spiffe://${TD}/node1`,
          selectors: ['unix:uid:5'],
        }),
        `${base}/v1/entries`,
      ]),
    );
    expect(create.status).toBe(201);
  });

  it('refuses a valid SVID that is not an admin with 403, and changes nothing', async () => {
    const before = JSON.parse((await server.cli('entry', 'show', '--output', 'json')).stdout).entries.length;
    const create = statusOf(
      await curl([
        ...certArgs('web'),
        '-H',
        'content-type: application/json',
        '-d',
        JSON.stringify({
          spiffe_id: `spiffe://${TD}/evil`,
          parent_id: `spiffe://${TD}/node1`,
          selectors: ['unix:uid:6'],
        }),
        `${base}/v1/entries`,
      ]),
    );
    expect(create.status).toBe(403);
    expect(JSON.parse(create.body).error.code).toBe('ERR_PERMISSION_DENIED');
    const after = JSON.parse((await server.cli('entry', 'show', '--output', 'json')).stdout).entries.length;
    expect(after).toBe(before);
    expect(server.logs()).toMatch(
      /"reason":"not-admin","callerId":"spiffe:\/\/example.org\/web".*"msg":"Admin caller refused"/,
    );
  });

  it('refuses a caller without a certificate with 401', async () => {
    const res = statusOf(await curl([`${base}/v1/entries`]));
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body).error.code).toBe('ERR_UNAUTHENTICATED');
  });

  it('refuses a look-alike SVID from a CA outside the bundle with 401', async () => {
    const foreign = path.join(tmp.dir, 'foreign');
    const res = statusOf(
      await curl(['--cert', `${foreign}/svid.pem`, '--key', `${foreign}/svid.key`, `${base}/v1/entries`]),
    );
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body).error.message).toMatch(/client certificate refused/);
    // The refusal is logged with its reason but never with the presented key material.
    expect(server.logs()).not.toContain(readFileSync(`${foreign}/svid.key`, 'utf8').split('\n')[1]);
  });

  it('serves probes and metrics without a certificate', async () => {
    expect(statusOf(await curl([`${base}/healthz`])).status).toBe(200);
    expect(statusOf(await curl([`${base}/readyz`])).status).toBe(200);
    const metrics = statusOf(await curl([`${base}/metrics`]));
    expect(metrics.body).toMatch(/sigil_server_svids_issued_total\{type="x509",caller="admin"\} 2/);
    expect(metrics.body).toMatch(/sigil_server_admin_auth_failures_total\{reason="no-certificate"\} [1-9]/);
  });

  it('presents a server SVID that openssl verifies against the bundle', async () => {
    const result = await runCommand('bash', [
      '-c',
      `echo | openssl s_client -connect 127.0.0.1:${server.adminAddress!.port} -CAfile ${tmp.dir}/ops/bundle.pem -verify_return_error -showcerts 2>&1`,
    ]);
    expect(result.stdout).toContain('Verify return code: 0 (ok)');
    const cert = await runCommand('bash', [
      '-c',
      `echo | openssl s_client -connect 127.0.0.1:${server.adminAddress!.port} 2>/dev/null | openssl x509 -noout -ext subjectAltName`,
    ]);
    expect(cert.stdout).toContain(`URI:spiffe://${TD}/sigil/server`);
  });
});
