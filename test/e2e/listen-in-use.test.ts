// A TCP address already taken is named by its setting, with the flag or key to change, and exit 2
// (a config error, as for a socket path that cannot be listened on): no stack trace. Real
// processes against a port a real listener holds.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rethrowListenError } from '../../src/spiffe/tcp-listen.js';
import { makeTempDir, runBin } from '../support/harness.js';

const { dir } = makeTempDir('sigil-listen-in-use-');
let holder: net.Server;
let taken: number;

beforeAll(async () => {
  holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  taken = (holder.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => holder.close(resolve));
});

const cli = (name: string, args: string[]) => runBin(name, args, process.env, 30_000);

/** The last stderr line that is not a JSON log line. */
const lastLine = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('{'))
    .at(-1);

describe('a listen address in use', () => {
  it.each([
    ['--admin-bind', 'admin_bind'],
    ['--bind', 'bind'],
    ['--metrics-bind', 'metrics_bind'],
  ])('sigil-server run %s names the setting and the flag', async (flag, setting) => {
    const run = join(dir, `server${flag}`);
    const args = ['run', '--trust-domain', 'example.org', '--data-dir', join(run, 'data')];
    args.push('--admin-socket', join(run, 'admin.sock'), '--bind', '127.0.0.1:0', flag, `127.0.0.1:${taken}`);
    const r = await cli('sigil-server', args);
    expect(r.code).toBe(2);
    expect(lastLine(r.stderr)).toBe(
      `sigil-server run: ${setting} 127.0.0.1:${taken} is in use (EADDRINUSE); choose another with ${flag}`,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('sigil-proxy run names the admin setting in its config', async () => {
    const config = join(dir, 'proxy.yaml');
    writeFileSync(
      config,
      `workload_api: unix://${join(dir, 'no-agent.sock')}\nadmin: 127.0.0.1:${taken}\n` +
        'inbound:\n  - { name: api, listen: 127.0.0.1:0, app: 127.0.0.1:8080 }\n',
    );
    const r = await cli('sigil-proxy', ['run', '--config', config]);
    expect(r.code).toBe(2);
    expect(lastLine(r.stderr)).toBe(
      `sigil-proxy run: admin 127.0.0.1:${taken} is in use (EADDRINUSE); choose another with admin in the config`,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('names a listener by its config path, and passes other errors through unchanged', async () => {
    const server = net.createServer();
    const bound = new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(taken, '127.0.0.1', resolve);
    });
    const target = { setting: 'inbound[1].listen', host: '127.0.0.1', port: taken };
    await expect(bound.catch(rethrowListenError(target))).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      field: 'inbound[1].listen',
      message: `inbound[1].listen 127.0.0.1:${taken} is in use (EADDRINUSE); choose another with inbound[1].listen in the config`,
    });
    const other = new Error('no identity yet');
    await expect(Promise.reject(other).catch(rethrowListenError(target))).rejects.toBe(other);
  });
});
