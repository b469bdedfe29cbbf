// A proxy's `spiffe_id:` picks one of the SVIDs the Workload API returns. Here one uid is entitled
// to two identities (two entries with the same selector), as the local mesh's demo sidecars are, and
// two sidecars of that uid each present their own: the app behind one sees the other's ID, and the
// outbound side's server_ids check proves the inbound side's. A sidecar whose ID is not offered yet
// stays not ready, says which IDs it got, and comes up once an entry for its ID appears.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProcess, freePort, makeSharedDir, waitFor } from '../support/agent-harness.js';
import { asUser, type Daemon, spawnDaemon } from '../support/daemon.js';
import { type ServerProcess, startServerProcess } from '../support/harness.js';
import { get } from '../support/proxy-mesh.js';
import { startAgentWithEntries, TD, uidEntry } from '../support/registration.js';
import {
  apiPairConfigs,
  PROXY_BIN,
  type SidecarProcess,
  startSidecarProcess,
  stopSidecars,
} from '../support/sidecar-harness.js';

/** One uid for every sidecar here: only `spiffe_id` tells their identities apart. */
const UID = 65534;

let root: { dir: string; cleanup(): void };
let server: ServerProcess;
let agent: AgentProcess;
let app: http.Server;
const sidecars: SidecarProcess[] = [];
const ports: Record<string, number> = {};

beforeAll(async () => {
  root = makeSharedDir('sigil-spiffe-id-');
  server = await startServerProcess({ dataDir: path.join(root.dir, 'server') });
  agent = await startAgentWithEntries(server, root.dir, [
    ['frontend', UID],
    ['backend', UID],
  ]);
  app = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ peer: req.headers['x-sigil-peer-id'] }));
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', () => resolve()));
  ports.app = (app.address() as AddressInfo).port;
  for (const name of ['inbound', 'outbound', 'backAdmin', 'frontAdmin', 'lateAdmin', 'lateIn'])
    ports[name] = await freePort();
  // Started one after the other, so each sees both SVIDs in the agent's order, whichever comes first.
  const configs = apiPairConfigs(agent.socketPath, ports, true);
  sidecars.push(await startSidecarProcess(UID, root.dir, 'backend', configs.back));
  sidecars.push(await startSidecarProcess(UID, root.dir, 'frontend', configs.front));
}, 120_000);

afterAll(async () => {
  await stopSidecars(sidecars);
  await new Promise((resolve) => app?.close(resolve));
  await agent?.stop();
  await server?.stop();
  root?.cleanup();
});

describe('sigil-proxy spiffe_id', () => {
  it('gives two sidecars of one uid each the identity its config names', async () => {
    const res = await get(ports.outbound!, '/hello');
    // 200 also means the backend's sidecar presented .../backend: the outbound requires it.
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ peer: `${TD}/frontend` });
    for (const [admin, id] of [
      [ports.frontAdmin, `${TD}/frontend`],
      [ports.backAdmin, `${TD}/backend`],
    ] as const) {
      const config = JSON.parse((await get(admin!, '/config')).body);
      expect(config.spiffe_id).toBe(id);
      expect(config.identity).toEqual({ spiffe_id: id });
    }
  });

  it('stays not ready while its ID is not offered, says which IDs it got, and starts once it is', async () => {
    const file = path.join(root.dir, 'late.yaml');
    writeFileSync(
      file,
      `workload_api: unix://${agent.socketPath}
spiffe_id: ${TD}/late
admin: 127.0.0.1:${ports.lateAdmin}
inbound:
  - { name: api, listen: "127.0.0.1:${ports.lateIn}", protocol: http, app: "127.0.0.1:${ports.app}" }
`,
      { mode: 0o644 },
    );
    const late: Daemon = spawnDaemon(asUser(UID, [process.execPath, PROXY_BIN, 'run', '--config', file]), {
      name: 'late sidecar',
    });
    try {
      await late.waitForOutput('Configured spiffe_id is not among the SVIDs', 20_000);
      const missing = late
        .output()
        .split('\n')
        .filter((line) => line.includes('Configured spiffe_id is not among'));
      expect(missing).toHaveLength(1);
      expect(JSON.parse(missing[0]!).offered).toEqual([`${TD}/backend`, `${TD}/frontend`]);
      const ready = await get(ports.lateAdmin!, '/ready');
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body)).toEqual({ status: `waiting for ${TD}/late from the Workload API` });

      await uidEntry(server, 'late', UID);
      await late.waitForOutput('"msg":"Sigil proxy started"', 20_000);
      await waitFor(
        async () => (await get(ports.lateAdmin!, '/ready')).status === 200,
        10_000,
        () => 'late sidecar not ready',
      );
      expect(late.output()).toContain('"msg":"Configured spiffe_id offered"');
      expect(JSON.parse((await get(ports.lateAdmin!, '/config')).body).identity).toEqual({
        spiffe_id: `${TD}/late`,
      });
    } finally {
      await late.stop();
    }
  });
});
