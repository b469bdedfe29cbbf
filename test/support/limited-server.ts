// A real sigil-server whose config sets listener limits (agent_api, admin_api) for attack tests, and
// a way to time how long the server keeps a connection open.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir, type ServerProcess, startServerProcess } from './harness.js';

type Section = Record<string, string | number>;

/** Starts a server with the given config sections (`agent_api`, `admin_api`, …) over the defaults. */
export async function startLimitedServer(
  sections: Record<string, Section>,
  options: { adminBind?: boolean } = {},
): Promise<ServerProcess> {
  const tmp = makeTempDir('sigil-security-');
  const config = path.join(tmp.dir, 'server.yaml');
  const lines = ['trust_domain: example.org'];
  for (const [name, settings] of Object.entries(sections)) {
    lines.push(`${name}:`, ...Object.entries(settings).map(([k, v]) => `  ${k}: ${v}`));
  }
  writeFileSync(config, `${lines.join('\n')}\n`);
  return startServerProcess({
    configFile: config,
    dataDir: path.join(tmp.dir, 'data'),
    adminBind: options.adminBind ?? false,
  });
}

/** Milliseconds until `socket` closes, or `limitMs` if it is still open then. */
export function msUntilClosed(
  socket: { once(event: 'close', fn: () => void): unknown },
  limitMs: number,
): Promise<number> {
  const start = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(limitMs), limitMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - start);
    });
  });
}
