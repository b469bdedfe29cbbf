// The ports a sidecar bench binds, drawn at once so that none is handed out twice (freePorts), then
// handed out one at a time, as an app's pair of ports, or as a sidecar pair's six listeners.
import { type AppPorts, freePorts, type PairPorts } from './proxy-setup.js';

export interface PortPool {
  /** Throws once the pool is spent: a bench that draws too few ports must fail, not bind port 0. */
  take(): number;
  app(): AppPorts;
  pair(): PairPorts;
}

export async function drawPorts(count: number): Promise<PortPool> {
  const ports = await freePorts(count);
  const take = () => {
    const port = ports.shift();
    if (port === undefined) throw new Error(`drew ${count} ports, and every one is taken`);
    return port;
  };
  return {
    take,
    app: () => ({ http: take(), h2c: take() }),
    pair: () => ({
      outHttp: take(),
      outTcp: take(),
      outH2: take(),
      inHttp: take(),
      inTcp: take(),
      inH2: take(),
    }),
  };
}
