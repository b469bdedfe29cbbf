// Guards the sidecar's memory (issue 14): a real sidecar pair with real identities, after traffic
// through it, keeps V8's young generation within bin/sigil-proxy's cap (4 MB per semi-space; grown
// to 16 MB it stayed resident at idle), loads none of the heavy packages the data path does not
// need, and stays under an RSS bound with a wide margin (~75 MB measured after this traffic; 83 MB
// idle after the bench's saturation; ~112 MB without the cap). An operator who sizes the young
// generation with node's flags gets their size.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProcess, freePort, makeSharedDir, waitFor } from '../support/agent-harness.js';
import { REPO_ROOT, type ServerProcess, startServerProcess } from '../support/harness.js';
import { get } from '../support/proxy-mesh.js';
import { startAgentWithEntries } from '../support/registration.js';
import {
  apiPairConfigs,
  type SidecarProcess,
  startSidecarProcess,
  stopSidecars,
} from '../support/sidecar-harness.js';

const FRONT_UID = 65534;
const BACK_UID = 1;
const CENSUS = ['--import', path.join(REPO_ROOT, 'test', 'support', 'module-census.mjs')];
const MB = 1024 * 1024;
/** Two 4 MB semi-spaces (young-generation.ts); uncapped, this traffic grows it to 16 MB. */
const CAPPED_NEW_SPACE_BYTES = 8 * MB;
/** What loading the proxy grows the young generation to (two 4 MB semi-spaces) unless told otherwise. */
const NEW_SPACE_AFTER_START_BYTES = 8 * MB;
/** Far above what was measured (~80 MB), far below what a grown young generation reaches (~110 MB). */
const RSS_BOUND_BYTES = 100 * MB;
/** Packages a sidecar without tracing must never load: each costs megabytes (gRPC, OTel SDK, protobuf). */
const NOT_ON_THE_DATA_PATH = [
  '@grpc/grpc-js',
  '@grpc/proto-loader',
  'protobufjs',
  '@opentelemetry/sdk-trace-base',
  '@opentelemetry/exporter-trace-otlp-proto',
  'fastify',
  'better-sqlite3',
  'pino-pretty',
];

interface Census {
  readonly modules: string[];
  readonly newSpaceBytes: number;
  readonly rssBytes: number;
}

let root: { dir: string; cleanup(): void };
let server: ServerProcess;
let agent: AgentProcess;
let app: http.Server;
const sidecars: SidecarProcess[] = [];
const ports: Record<string, number> = {};

beforeAll(async () => {
  root = makeSharedDir('sigil-memory-');
  server = await startServerProcess({ dataDir: path.join(root.dir, 'server') });
  agent = await startAgentWithEntries(server, root.dir, [
    ['frontend', FRONT_UID],
    ['backend', BACK_UID],
  ]);
  app = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', () => resolve()));
  ports.app = (app.address() as AddressInfo).port;
  for (const name of ['inbound', 'outbound', 'backAdmin', 'frontAdmin']) ports[name] = await freePort();
  const configs = apiPairConfigs(agent.socketPath, ports);
  sidecars.push(await startSidecarProcess(BACK_UID, root.dir, 'back', configs.back, CENSUS));
  sidecars.push(await startSidecarProcess(FRONT_UID, root.dir, 'front', configs.front, CENSUS));
}, 120_000);

afterAll(async () => {
  await stopSidecars(sidecars);
  await new Promise((resolve) => app?.close(resolve));
  await agent?.stop();
  await server?.stop();
  root?.cleanup();
});

async function census(sidecar: SidecarProcess): Promise<Census> {
  const seen = sidecar.lines('module census').length;
  sidecar.child.kill('SIGUSR2');
  await waitFor(
    () => sidecar.lines('module census').length > seen,
    10_000,
    () => 'module census',
  );
  return sidecar.lines('module census').at(-1) as unknown as Census;
}

/** `total` requests through the pair, `concurrency` at a time: enough to grow an uncapped young generation. */
async function traffic(total: number, concurrency: number): Promise<void> {
  let sent = 0;
  const worker = async () => {
    while (sent < total) {
      sent++;
      const res = await get(ports.outbound!, '/');
      expect(res.status).toBe(200);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

describe('sidecar memory', () => {
  it('keeps the young generation within its cap through traffic, and RSS under its bound', async () => {
    await traffic(3_000, 20);
    for (const sidecar of sidecars) {
      const seen = await census(sidecar);
      expect(seen.newSpaceBytes).toBeLessThanOrEqual(CAPPED_NEW_SPACE_BYTES);
      expect(seen.rssBytes).toBeLessThan(RSS_BOUND_BYTES);
      const heavy = NOT_ON_THE_DATA_PATH.filter((pkg) =>
        seen.modules.some((file) => file.includes(`${path.sep}node_modules${path.sep}${pkg}${path.sep}`)),
      );
      expect(heavy).toEqual([]);
    }
  });

  it("gives an operator who sizes the young generation (node's flags or NODE_OPTIONS) that size", async () => {
    ports.sizedAdmin = await freePort();
    ports.sizedIn = await freePort();
    const sized = await startSidecarProcess(
      BACK_UID,
      root.dir,
      'sized',
      `workload_api: unix://${agent.socketPath}
admin: 127.0.0.1:${ports.sizedAdmin}
inbound:
  - { name: api, listen: "127.0.0.1:${ports.sizedIn}", protocol: http, app: "127.0.0.1:${ports.app}" }
`,
      ['--max-semi-space-size=1', ...CENSUS],
    );
    sidecars.push(sized);
    // 1 MB semi-spaces, where loading the proxy under the sidecar's own cap reaches 4 MB ones.
    expect((await census(sized)).newSpaceBytes).toBeLessThan(NEW_SPACE_AFTER_START_BYTES / 2);
  });
});
