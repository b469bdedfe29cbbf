// The config files of the mesh's components, written as YAML an operator can read and copy: a
// server for sigil.local, an agent, and two sidecars that each pick their identity with spiffe_id
// (both run as this user, so the agent offers each of them both SVIDs). Strings are written as JSON
// strings, which YAML reads as double-quoted scalars, so any path is safe. Configs are rewritten on
// every run (ports may change); the policies only when missing, so edits to them survive a restart.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MeshLayout, PortPlan } from './layout.js';
import { MESH_HOST } from './ports.js';

export const TRUST_DOMAIN = 'sigil.local';
/** The join token's alias: entries are parented to it, so they exist before the agent does. */
export const NODE_ID = `spiffe://${TRUST_DOMAIN}/node`;
export const FRONTEND_ID = `spiffe://${TRUST_DOMAIN}/frontend`;
export const BACKEND_ID = `spiffe://${TRUST_DOMAIN}/backend`;

export interface MeshFiles {
  readonly serverConfig: string;
  readonly agentConfig: string;
  readonly bundle: string;
  /** The demo entries, as the batch `sigil-server entry create --data` took them. */
  readonly entries: string;
  readonly frontendProxy: string;
  readonly backendProxy: string;
  readonly frontendPolicy: string;
  readonly backendPolicy: string;
}

export function meshFiles(layout: MeshLayout): MeshFiles {
  const at = (name: string) => path.join(layout.configDir, name);
  return {
    serverConfig: at('server.yaml'),
    agentConfig: at('agent.yaml'),
    bundle: at('bundle.pem'),
    entries: at('entries.json'),
    frontendProxy: at('frontend-proxy.yaml'),
    backendProxy: at('backend-proxy.yaml'),
    frontendPolicy: at('frontend-policy.yaml'),
    backendPolicy: at('backend-policy.yaml'),
  };
}

const str = (value: string) => JSON.stringify(value);
const hostPort = (port: number) => str(`${MESH_HOST}:${port}`);

export function writeMeshConfigs(layout: MeshLayout, files: MeshFiles, ports: PortPlan): void {
  write(
    files.serverConfig,
    `# sigil-server of the local mesh (sigil-mesh up writes this file on every start).
trust_domain: ${TRUST_DOMAIN}
data_dir: ${str(layout.serverData)}
bind: ${hostPort(ports.agentApi)}
admin_socket: ${str(layout.serverAdminSocket)}
metrics_bind: ${hostPort(ports.serverMetrics)}
`,
  );
  // The join token is passed on the command line only when the agent has never attested: a secret
  // (however short-lived and single-use) is not left in a file.
  write(
    files.agentConfig,
    `# sigil-agent of the local mesh (sigil-mesh up writes this file on every start).
trust_domain: ${TRUST_DOMAIN}
server_address: [${hostPort(ports.agentApi)}]
trust_bundle_path: ${str(files.bundle)}
data_dir: ${str(layout.agentData)}
socket_path: ${str(layout.workloadApiSocket)}
admin_socket: ${str(layout.agentAdminSocket)}
metrics_bind: ${hostPort(ports.agentMetrics)}
`,
  );
  write(
    files.frontendProxy,
    sidecarConfig({
      who: 'frontend',
      spiffeId: FRONTEND_ID,
      layout,
      policy: files.frontendPolicy,
      admin: ports.frontendAdmin,
      inbound: ports.frontendInbound,
      app: ports.frontendApp,
      outbound: { name: 'backend', listen: ports.frontendOutbound, to: ports.backendInbound, id: BACKEND_ID },
    }),
  );
  write(
    files.backendProxy,
    sidecarConfig({
      who: 'backend',
      spiffeId: BACKEND_ID,
      layout,
      policy: files.backendPolicy,
      admin: ports.backendAdmin,
      inbound: ports.backendInbound,
      app: ports.backendApp,
      outbound: {
        name: 'frontend',
        listen: ports.backendOutbound,
        to: ports.frontendInbound,
        id: FRONTEND_ID,
      },
    }),
  );
  writeOnce(
    files.backendPolicy,
    `# Who may call the backend (reloaded on save; a broken file keeps the previous policy).
# With an ALLOW policy in place, every caller no ALLOW rule names is refused with 403.
policies:
  - name: frontend-only
    action: ALLOW
    rules:
      - from: { principals: [${str(FRONTEND_ID)}] }
`,
  );
  writeOnce(
    files.frontendPolicy,
    `# Who may call the frontend (reloaded on save; a broken file keeps the previous policy).
# The frontend calls the backend, never the other way round: the backend is refused with 403.
policies:
  - name: not-from-backend
    action: DENY
    rules:
      - from: { principals: [${str(BACKEND_ID)}] }
`,
  );
}

function sidecarConfig(s: {
  who: string;
  spiffeId: string;
  layout: MeshLayout;
  policy: string;
  admin: number;
  inbound: number;
  app: number;
  outbound: { name: string; listen: number; to: number; id: string };
}): string {
  return `# The ${s.who} sidecar of the local mesh (sigil-mesh up writes this file on every start).
workload_api: ${str(`unix://${s.layout.workloadApiSocket}`)}
# Everything in the mesh runs as one user, so the agent offers this sidecar both demo SVIDs;
# spiffe_id picks its own. On a real node each workload has its own uid and gets only its own.
spiffe_id: ${str(s.spiffeId)}
admin: ${hostPort(s.admin)}
policy_file: ${str(s.policy)}
inbound:
  - name: ${s.who}
    listen: ${hostPort(s.inbound)}
    protocol: http
    app: ${hostPort(s.app)}
outbound:
  - name: ${s.outbound.name}
    listen: ${hostPort(s.outbound.listen)}
    protocol: http
    upstream: ${hostPort(s.outbound.to)}
    server_ids: [${str(s.outbound.id)}]
`;
}

function write(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
}

function writeOnce(file: string, text: string): void {
  if (!existsSync(file)) write(file, text);
}
