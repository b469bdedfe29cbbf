// The scenarios bench:proxy measures (h1, tcp, h2): each one's load tools and, per target that takes
// part, the port its traffic enters at. Peers take part only in the scenarios they carry
// (PEER_SCENARIOS: Caddy has no TCP or h2c pipe).
import { PEER_SCENARIOS, type PeerName } from './proxy-peers.js';
import type { ScenarioKey, TargetName } from './proxy-scenario-figures.js';
import type { AppPorts, PairPorts } from './proxy-setup.js';

export interface Scenario {
  readonly key: ScenarioKey;
  readonly title: string;
  readonly saturation: 'wrk' | 'h2load';
  readonly rateProtocol: 'h1' | 'h2';
  /** Only the targets that take part in the scenario (Caddy has no TCP pipe). */
  readonly ports: Partial<Record<TargetName, number>>;
}

/** Every scenario, over the app's ports, the three always-started pairs' and the peers' that run. */
export function benchScenarios(
  app: AppPorts,
  pairs: { readonly sigil: PairPorts; readonly floor: PairPorts; readonly haproxy: PairPorts },
  peerPorts: ReadonlyMap<PeerName, PairPorts>,
): Scenario[] {
  /** A peer's port in a scenario, when it takes part in it. */
  const peerPort = (peer: PeerName, key: ScenarioKey, port: (p: PairPorts) => number) =>
    peerPorts.has(peer) && PEER_SCENARIOS[peer].includes(key) ? port(peerPorts.get(peer)!) : undefined;
  const peerPortsOf = (key: ScenarioKey, port: (p: PairPorts) => number) => ({
    nginx: peerPort('nginx', key, port),
    caddy: peerPort('caddy', key, port),
  });

  return [
    {
      key: 'h1',
      title: 'HTTP/1.1 (Sigil http L7 vs HAProxy mode http)',
      saturation: 'wrk',
      rateProtocol: 'h1',
      ports: {
        direct: app.http,
        sigil: pairs.sigil.outHttp,
        floor: pairs.floor.outHttp,
        haproxy: pairs.haproxy.outHttp,
        ...peerPortsOf('h1', (p) => p.outHttp),
      },
    },
    {
      key: 'tcp',
      title: 'opaque TCP carrying HTTP/1.1 (Sigil tcp vs HAProxy mode tcp)',
      saturation: 'wrk',
      rateProtocol: 'h1',
      ports: {
        direct: app.http,
        sigil: pairs.sigil.outTcp,
        floor: pairs.floor.outTcp,
        haproxy: pairs.haproxy.outTcp,
        ...peerPortsOf('tcp', (p) => p.outTcp),
      },
    },
    {
      key: 'h2',
      title: 'HTTP/2 app traffic, h2c (Sigil http2 pipe vs HAProxy mode tcp)',
      saturation: 'h2load',
      rateProtocol: 'h2',
      ports: {
        direct: app.h2c,
        sigil: pairs.sigil.outH2,
        floor: pairs.floor.outH2,
        haproxy: pairs.haproxy.outH2,
        ...peerPortsOf('h2', (p) => p.outH2),
      },
    },
  ];
}
