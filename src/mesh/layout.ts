// Where the local mesh keeps everything, and which ports it takes. All of it lives under
// `<dir>/mesh` (dir defaults to .sigil in the working directory), one folder per kind of thing, so
// a second run finds its server database and agent SVID again and `rm -rf .sigil/mesh` resets it.
// Unix socket paths must fit in sun_path (107 bytes); when the working directory is too deep for
// that, the sockets move to a per-user directory under /tmp, named after a hash of the mesh
// directory so two meshes never share one. This module computes paths; it creates nothing.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { MAX_SOCKET_PATH_BYTES } from '../spiffe/socket-listen.js';

export interface MeshLayout {
  /** `<dir>/mesh`, absolute. */
  readonly root: string;
  readonly serverData: string;
  readonly agentData: string;
  /** Generated configs, policies and the trust bundle the agent starts from. */
  readonly configDir: string;
  /** One log file per component. */
  readonly logDir: string;
  /** The processes of the current run, so a run after a `kill -9` can stop what it left. */
  readonly runFile: string;
  /** The directory holding every socket below. */
  readonly socketDir: string;
  readonly serverAdminSocket: string;
  readonly agentAdminSocket: string;
  readonly workloadApiSocket: string;
  /** Why the sockets are not under `root`, when they are not. */
  readonly socketFallback: string | null;
}

export function meshLayout(dir: string, uid: number): MeshLayout {
  const root = path.join(path.resolve(dir), 'mesh');
  let socketDir = path.join(root, 'sockets');
  let socketFallback: string | null = null;
  // The longest of the three paths below decides.
  const longest = Buffer.byteLength(path.join(socketDir, 'agent', 'private', 'admin.sock'));
  if (longest > MAX_SOCKET_PATH_BYTES) {
    const tag = createHash('sha256').update(root).digest('hex').slice(0, 12);
    socketDir = path.join('/tmp', `sigil-mesh-${uid}`, tag);
    socketFallback = `${root} is too deep for Unix socket paths (${longest} > ${MAX_SOCKET_PATH_BYTES} bytes); sockets are in ${socketDir}`;
  }
  return {
    root,
    serverData: path.join(root, 'server'),
    agentData: path.join(root, 'agent'),
    configDir: path.join(root, 'config'),
    logDir: path.join(root, 'logs'),
    runFile: path.join(root, 'run.json'),
    socketDir,
    serverAdminSocket: path.join(socketDir, 'server', 'admin.sock'),
    agentAdminSocket: path.join(socketDir, 'agent', 'private', 'admin.sock'),
    workloadApiSocket: path.join(socketDir, 'agent', 'public', 'api.sock'),
    socketFallback,
  };
}

/** Every port the mesh listens on, as an offset from --base-port, and what it is for (messages name it). */
export const PORT_SLOTS = {
  agentApi: { offset: 0, purpose: "the server's agent API" },
  frontendOutbound: { offset: 1, purpose: "the frontend sidecar's outbound listener (to backend)" },
  backendOutbound: { offset: 2, purpose: "the backend sidecar's outbound listener (to frontend)" },
  frontendApp: { offset: 3, purpose: 'the frontend demo app' },
  frontendInbound: { offset: 4, purpose: "the frontend sidecar's inbound listener" },
  frontendAdmin: { offset: 5, purpose: "the frontend sidecar's admin port" },
  backendApp: { offset: 6, purpose: 'the backend demo app' },
  backendInbound: { offset: 7, purpose: "the backend sidecar's inbound listener" },
  backendAdmin: { offset: 8, purpose: "the backend sidecar's admin port" },
  serverMetrics: { offset: 9, purpose: "the server's metrics port" },
  agentMetrics: { offset: 10, purpose: "the agent's metrics port" },
} as const;

export type PortSlot = keyof typeof PORT_SLOTS;
export type PortPlan = Readonly<Record<PortSlot, number>>;

/** How many consecutive ports from --base-port the mesh takes. */
export const PORT_COUNT = Object.keys(PORT_SLOTS).length;
/** Clear of the well-known ports and of Linux's ephemeral range (32768+) that tests and clients use. */
export const DEFAULT_BASE_PORT = 7400;

export function portPlan(basePort: number): PortPlan {
  const plan = {} as Record<PortSlot, number>;
  for (const [slot, { offset }] of Object.entries(PORT_SLOTS)) plan[slot as PortSlot] = basePort + offset;
  return plan;
}
