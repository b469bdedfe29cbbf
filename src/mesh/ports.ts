// Checks the mesh's whole port block before anything starts, so a port in use is one line naming
// the port, what it was for and the flag to change it, not a component dying halfway up. A bind
// that succeeds here can still lose a race with another program before the component binds it;
// that component then exits and the mesh reports it with its log.
import { createServer } from 'node:net';
import { SigilError } from '../spiffe/errors.js';
import { PORT_COUNT, PORT_SLOTS, type PortPlan, type PortSlot } from './layout.js';

/** The host every mesh listener binds: nothing of the demo is reachable from other machines. */
export const MESH_HOST = '127.0.0.1';

/** Whether `port` can be bound on MESH_HOST now (a port held on 0.0.0.0 counts as in use too). */
export function isPortFree(port: number, host = MESH_HOST): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Throws ERR_CONFIG_INVALID (field `--base-port`) naming the first port of `plan` in use. */
export async function checkPortsFree(plan: PortPlan, basePort: number): Promise<void> {
  for (const [slot, port] of Object.entries(plan) as Array<[PortSlot, number]>) {
    if (await isPortFree(port)) continue;
    throw new SigilError(
      'ERR_CONFIG_INVALID',
      `port ${port} (${PORT_SLOTS[slot].purpose}) is in use; start with --base-port N to use ports N to N+${PORT_COUNT - 1} instead of ${basePort} to ${basePort + PORT_COUNT - 1}`,
      { field: '--base-port', reason: 'port-in-use' },
    );
  }
}
