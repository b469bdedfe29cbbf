import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_AGENT_ADMIN_SOCKET, DEFAULT_SOCKET_PATH, loadAgentConfig } from './config.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const REQUIRED = { trustDomain: 'example.org', serverAddress: ['127.0.0.1:8081'] };
const FOR_USER = {
  socketPath: '/tmp/sigil-agent-1000/public/api.sock',
  adminSocket: '/tmp/sigil-agent-1000/private/admin.sock',
};

describe('loadAgentConfig socket paths', () => {
  it('default to the system paths when the caller passes no per-user defaults', () => {
    const config = loadAgentConfig(REQUIRED, '/srv');
    expect([config.socketPath, config.adminSocket]).toEqual([
      '/run/sigil-agent/public/api.sock',
      '/run/sigil-agent/private/admin.sock',
    ]);
    expect([DEFAULT_SOCKET_PATH, DEFAULT_AGENT_ADMIN_SOCKET]).toEqual([
      config.socketPath,
      config.adminSocket,
    ]);
  });

  it('take the flag, else the file, else the default passed for this user', () => {
    const fromDefaults = loadAgentConfig(REQUIRED, '/srv', FOR_USER);
    expect([fromDefaults.socketPath, fromDefaults.adminSocket]).toEqual([
      FOR_USER.socketPath,
      FOR_USER.adminSocket,
    ]);
    const dir = mkdtempSync(path.join(tmpdir(), 'sigil-agent-config-'));
    dirs.push(dir);
    const file = path.join(dir, 'agent.yaml');
    writeFileSync(file, 'socket_path: /run/x/api.sock\nadmin_socket: /run/x/admin.sock\n');
    const fromFile = loadAgentConfig({ ...REQUIRED, config: file }, '/srv', FOR_USER);
    expect([fromFile.socketPath, fromFile.adminSocket]).toEqual(['/run/x/api.sock', '/run/x/admin.sock']);
    const fromFlag = loadAgentConfig({ ...REQUIRED, config: file, socketPath: 'api.sock' }, '/srv', FOR_USER);
    expect(fromFlag.socketPath).toBe('/srv/api.sock');
  });
});
