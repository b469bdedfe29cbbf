import { describe, expect, it } from 'vitest';
import {
  defaultSocketPath,
  defaultWorkloadApiSocket,
  describeDefaultSocket,
  type RuntimeDirFs,
  systemSocketPath,
} from './runtime-dir.js';

const ME = 1000;

/** A machine described by the directories that exist (owner, mode) and those this user may write. */
function machine(options: {
  dirs?: Record<string, { uid: number; mode: number }>;
  writable?: string[];
  files?: string[];
}): RuntimeDirFs {
  const dirs = options.dirs ?? {};
  return {
    directory: (target) => dirs[target],
    exists: (target) => target in dirs || (options.files ?? []).includes(target),
    isWritable: (target) => (options.writable ?? []).includes(target),
  };
}

const root = machine({ dirs: { '/run': { uid: 0, mode: 0o755 } }, writable: ['/run'] });
const user = machine({ dirs: { '/run': { uid: 0, mode: 0o755 } } });
const xdg = { XDG_RUNTIME_DIR: '/run/user/1000' };

describe('defaultSocketPath', () => {
  it('uses /run/<daemon> for a user who may write /run (root)', () => {
    expect(defaultSocketPath('serverAdmin', { uid: 0, env: {} }, root)).toBe(
      '/run/sigil-server/private/admin.sock',
    );
    expect(defaultSocketPath('agentAdmin', { uid: 0, env: xdg }, root)).toBe(
      '/run/sigil-agent/private/admin.sock',
    );
    expect(defaultSocketPath('workloadApi', { uid: 0, env: {} }, root)).toBe(
      '/run/sigil-agent/public/api.sock',
    );
  });

  it('uses /run/<daemon> when it exists and this user may write it (systemd RuntimeDirectory=)', () => {
    const fs = machine({
      dirs: { '/run': { uid: 0, mode: 0o755 }, '/run/sigil-server': { uid: ME, mode: 0o700 } },
      writable: ['/run/sigil-server'],
    });
    expect(defaultSocketPath('serverAdmin', { uid: ME, env: xdg }, fs)).toBe(
      '/run/sigil-server/private/admin.sock',
    );
  });

  it('skips a /run/<daemon> this user may not write, even though it exists', () => {
    const fs = machine({
      dirs: { '/run': { uid: 0, mode: 0o755 }, '/run/sigil-agent': { uid: 0, mode: 0o755 } },
      writable: ['/run'],
    });
    expect(defaultSocketPath('agentAdmin', { uid: ME, env: {} }, fs)).toBe(
      '/tmp/sigil-agent-1000/private/admin.sock',
    );
  });

  it('uses $XDG_RUNTIME_DIR when it is set, ours and 0700', () => {
    const fs = machine({
      dirs: { '/run': { uid: 0, mode: 0o755 }, '/run/user/1000': { uid: ME, mode: 0o700 } },
    });
    expect(defaultSocketPath('serverAdmin', { uid: ME, env: xdg }, fs)).toBe(
      '/run/user/1000/sigil-server/private/admin.sock',
    );
  });

  it.each([
    ['owned by another user', { XDG_RUNTIME_DIR: '/run/user/1000' }, { uid: 1001, mode: 0o700 }],
    ['open to others', { XDG_RUNTIME_DIR: '/run/user/1000' }, { uid: ME, mode: 0o755 }],
    ['missing', { XDG_RUNTIME_DIR: '/run/user/9999' }, { uid: ME, mode: 0o700 }],
    ['relative', { XDG_RUNTIME_DIR: 'run/user/1000' }, { uid: ME, mode: 0o700 }],
    ['empty', { XDG_RUNTIME_DIR: '' }, { uid: ME, mode: 0o700 }],
  ])('falls back to /tmp/<daemon>-<uid> when $XDG_RUNTIME_DIR is %s', (_, env, info) => {
    const fs = machine({ dirs: { '/run': { uid: 0, mode: 0o755 }, '/run/user/1000': info } });
    expect(defaultSocketPath('serverAdmin', { uid: ME, env }, fs)).toBe(
      '/tmp/sigil-server-1000/private/admin.sock',
    );
  });

  it('falls back to /tmp/<daemon>-<uid> without $XDG_RUNTIME_DIR', () => {
    expect(defaultSocketPath('workloadApi', { uid: ME, env: {} }, user)).toBe(
      '/tmp/sigil-agent-1000/public/api.sock',
    );
  });
});

describe('defaultWorkloadApiSocket', () => {
  it('finds the system agent from any user', () => {
    const fs = machine({
      dirs: { '/run': { uid: 0, mode: 0o755 } },
      files: ['/run/sigil-agent/public/api.sock'],
    });
    expect(defaultWorkloadApiSocket({ uid: ME, env: {} }, fs)).toBe('/run/sigil-agent/public/api.sock');
  });

  it('otherwise looks where an agent run by this user listens', () => {
    expect(defaultWorkloadApiSocket({ uid: ME, env: {} }, user)).toBe(
      '/tmp/sigil-agent-1000/public/api.sock',
    );
  });
});

describe('describeDefaultSocket', () => {
  it('states the rule with the system path first', () => {
    expect(systemSocketPath('serverAdmin')).toBe('/run/sigil-server/private/admin.sock');
    expect(describeDefaultSocket('serverAdmin')).toBe(
      '/run/sigil-server/private/admin.sock (if you may not write /run/sigil-server: $XDG_RUNTIME_DIR/sigil-server/… or /tmp/sigil-server-<uid>/…)',
    );
  });
});
