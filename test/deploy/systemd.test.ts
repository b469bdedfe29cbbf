// deploy/systemd: `systemd-sysusers` creates the users in a temp root, `systemd-analyze verify`
// checks each unit there (with the ExecStart binaries present as shims, since verify refuses a
// missing one), and the units agree with sigil.sysusers, the package's bin names and the example
// configs' paths. Hardening keys are asserted, so a unit cannot lose them unnoticed.
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { makeTempDir, REPO_ROOT, runCommand } from '../support/harness.js';

const DIR = path.join(REPO_ROOT, 'deploy', 'systemd');
const ANALYZE = '/usr/bin/systemd-analyze';
const SYSUSERS = '/usr/bin/systemd-sysusers';
const SYSTEM_UNITS = '/usr/lib/systemd/system';
const UNITS = ['sigil-server.service', 'sigil-agent.service', 'sigil-proxy@.service'] as const;

const root = makeTempDir('sigil-systemd-root-');
afterAll(() => root.cleanup());

/** Key → values of a unit file (a key may repeat), sections merged. */
function readUnit(name: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const line of readFileSync(path.join(DIR, name), 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  return keys;
}
const one = (unit: Map<string, string[]>, key: string) => unit.get(key)?.at(-1);

async function run(file: string, args: string[]): Promise<{ code: number; output: string }> {
  const res = await runCommand(file, args);
  return { code: res.code, output: `${res.stdout}${res.stderr}`.trim() };
}

describe('deploy/systemd', () => {
  const bins = Object.keys(JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).bin);
  const sysusers = readFileSync(path.join(DIR, 'sigil.sysusers'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('u '))
    .map((l) => l.split(/\s+/)[1]);

  it.each(UNITS)('%s starts a binary the package installs, as a user sigil.sysusers creates', (name) => {
    const unit = readUnit(name);
    const exec = one(unit, 'ExecStart')!.split(' ');
    expect(path.dirname(exec[0]!)).toBe('/usr/bin');
    expect(bins).toContain(path.basename(exec[0]!));
    expect(exec.slice(1, 3)).toEqual(['run', '--config']);
    const user = one(unit, 'User');
    if (name === 'sigil-agent.service') expect(user).toBeUndefined();
    else expect(sysusers).toContain(user);
    expect(readFileSync(path.join(DIR, name), 'utf8')).not.toMatch(/https?:\/\//);
  });

  it.each(UNITS)('%s is hardened', (name) => {
    const unit = readUnit(name);
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['PrivateTmp', 'yes'],
      ['PrivateDevices', 'yes'],
      ['ProtectKernelTunables', 'yes'],
      ['RestrictSUIDSGID', 'yes'],
      ['SystemCallFilter', '@system-service'],
    ]) {
      expect(one(unit, key!), `${name} ${key}`).toBe(value);
    }
    expect(['yes', 'read-only']).toContain(one(unit, 'ProtectHome'));
    if (name === 'sigil-agent.service') {
      // Attesting other users' processes needs their /proc entries: visible, and ptrace-readable.
      expect(one(unit, 'CapabilityBoundingSet')).toBe('CAP_SYS_PTRACE CAP_DAC_READ_SEARCH');
      expect(unit.has('ProtectProc')).toBe(false);
    } else {
      expect(one(unit, 'CapabilityBoundingSet')).toBe('');
      expect(one(unit, 'ProtectProc')).toBe('invisible');
    }
  });

  it('gives the example configs the directories systemd makes', () => {
    for (const [unitName, example, keys] of [
      ['sigil-server.service', 'server.example.yaml', ['data_dir', 'admin_socket']],
      ['sigil-agent.service', 'agent.example.yaml', ['data_dir', 'socket_path', 'admin_socket']],
    ] as const) {
      const unit = readUnit(unitName);
      const config = parseYaml(readFileSync(path.join(REPO_ROOT, 'deploy', example), 'utf8'));
      const writable = [`/var/lib/${one(unit, 'StateDirectory')}`, `/run/${one(unit, 'RuntimeDirectory')}`];
      for (const key of keys) {
        expect(
          writable.some((dir) => config[key] === dir || config[key].startsWith(`${dir}/`)),
          `${example} ${key}`,
        ).toBe(true);
      }
    }
  });

  const tools = existsSync(ANALYZE) && existsSync(SYSUSERS) && existsSync(SYSTEM_UNITS);
  describe.runIf(tools)('with systemd-sysusers and systemd-analyze (present here)', () => {
    it('creates the users from sigil.sysusers', async () => {
      mkdirSync(path.join(root.dir, 'etc'), { recursive: true });
      const res = await run(SYSUSERS, [`--root=${root.dir}`, path.join(DIR, 'sigil.sysusers')]);
      expect(res.code, res.output).toBe(0);
      const passwd = readFileSync(path.join(root.dir, 'etc', 'passwd'), 'utf8');
      for (const user of sysusers) expect(passwd).toMatch(new RegExp(`^${user}:`, 'm'));
    });

    it.each(UNITS)('systemd-analyze verify %s: no error, no warning', async (name) => {
      const units = path.join(root.dir, 'etc', 'systemd', 'system');
      mkdirSync(units, { recursive: true });
      // The targets the units order against (network-online, multi-user) come from the host's set.
      if (!existsSync(path.join(root.dir, SYSTEM_UNITS)))
        cpSync(SYSTEM_UNITS, path.join(root.dir, SYSTEM_UNITS), { recursive: true, verbatimSymlinks: true });
      cpSync(path.join(DIR, name), path.join(units, name));
      const exec = one(readUnit(name), 'ExecStart')!.split(' ')[0]!;
      mkdirSync(path.join(root.dir, path.dirname(exec)), { recursive: true });
      writeFileSync(path.join(root.dir, exec), '#!/bin/sh\n');
      chmodSync(path.join(root.dir, exec), 0o755);
      const instance = name.replace('@.', '@demo.');
      const res = await run(ANALYZE, ['verify', `--root=${root.dir}`, instance]);
      expect(res.output).toBe('');
      expect(res.code).toBe(0);
    });
  });
});
