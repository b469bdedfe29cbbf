// An upstream authority from disk: the server's signing CA becomes an intermediate under an existing
// CA, the bundle holds only the upstream root, and SVIDs carry the intermediate so openssl can build
// the path from the leaf to that root.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir, runCommand, type ServerProcess, startServerProcess } from '../support/harness.js';
import { selfSignedEcCert } from '../support/openssl-cert.js';

const TD = 'corp.example';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function makeUpstream(dir: string): void {
  selfSignedEcCert({
    subject: '/O=Corp/CN=Corp Root',
    extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
    curve: 'P-384',
    days: 30,
    keyFile: path.join(dir, 'root.key'),
    outFile: path.join(dir, 'root.pem'),
  });
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
}

describe('upstream authority', () => {
  it('issues SVIDs under an intermediate whose chain openssl verifies to the upstream root', async () => {
    const tmp = makeTempDir();
    cleanups.push(tmp.cleanup);
    makeUpstream(tmp.dir);
    const config = path.join(tmp.dir, 'server.yaml');
    writeFileSync(
      config,
      [
        `trust_domain: ${TD}`,
        'ca:',
        '  ttl: 12h',
        '  upstream:',
        `    cert_file: ${path.join(tmp.dir, 'root.pem')}`,
        `    key_file: ${path.join(tmp.dir, 'root.key')}`,
        'default_x509_svid_ttl: 30m',
      ].join('\n'),
    );
    const server: ServerProcess = await startServerProcess({ configFile: config });
    cleanups.push(() => server.stop());

    const out = path.join(tmp.dir, 'svid');
    const mint = await server.cli('x509', 'mint', '--spiffe-id', `spiffe://${TD}/api`, '--write', out);
    expect(mint.code, mint.stderr).toBe(0);

    const bundle = readFileSync(path.join(out, 'bundle.pem'), 'utf8');
    expect(splitPem(bundle)).toEqual(splitPem(readFileSync(path.join(tmp.dir, 'root.pem'), 'utf8')));
    const chain = splitPem(readFileSync(path.join(out, 'svid.pem'), 'utf8'));
    expect(chain).toHaveLength(2);
    writeFileSync(path.join(tmp.dir, 'leaf.pem'), chain[0]!);
    writeFileSync(path.join(tmp.dir, 'intermediate.pem'), chain[1]!);

    // Without the intermediate there is no path; with it, the leaf verifies to the upstream root.
    const alone = await runCommand('openssl', [
      'verify',
      '-CAfile',
      path.join(out, 'bundle.pem'),
      path.join(tmp.dir, 'leaf.pem'),
    ]);
    expect(alone.code).not.toBe(0);
    const full = await runCommand('openssl', [
      'verify',
      '-CAfile',
      path.join(out, 'bundle.pem'),
      '-untrusted',
      path.join(tmp.dir, 'intermediate.pem'),
      path.join(tmp.dir, 'leaf.pem'),
    ]);
    expect(full.stdout).toContain(': OK');

    const intermediate = await runCommand('openssl', [
      'x509',
      '-in',
      path.join(tmp.dir, 'intermediate.pem'),
      '-noout',
      '-text',
    ]);
    expect(intermediate.stdout).toContain(`URI:spiffe://${TD}`);
    expect(intermediate.stdout).toContain('CA:TRUE');
    expect(intermediate.stdout).toMatch(/Issuer: O ?= ?Corp, CN ?= ?Corp Root/);
  });

  it('refuses to start when the upstream key does not match its certificate', async () => {
    const tmp = makeTempDir();
    cleanups.push(tmp.cleanup);
    makeUpstream(tmp.dir);
    await runCommand('openssl', [
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      path.join(tmp.dir, 'other.key'),
    ]);
    const config = path.join(tmp.dir, 'server.yaml');
    writeFileSync(
      config,
      `trust_domain: ${TD}\nca:\n  upstream:\n    cert_file: ${path.join(tmp.dir, 'root.pem')}\n    key_file: ${path.join(tmp.dir, 'other.key')}\n`,
    );
    const failed = await startServerProcess({ configFile: config }).catch((err: Error) => err);
    expect(String(failed)).toContain('does not belong to the first certificate');
  });
});
