// Why `policy check --to-port` found no rule for a port. A rule's `ports` are the app's ports (an
// inbound listener's `app`, where the proxy forwards to), not the port the proxy listens on; a
// newcomer who passes the listener's port gets a bare default deny. This says which port is meant
// and, when the port is an inbound listener's listen port in the given config, where it forwards.
import type { PolicySet } from './model.js';

/** An inbound listener as the proxy config names it: its listen port and the app port behind it. */
export interface InboundPorts {
  readonly name: string;
  readonly listenPort: number;
  readonly appPort: number;
}

/**
 * One line when no rule of `set` covers `port` (each rule names `ports` and none is this one);
 * undefined when some rule covers it (a rule without `ports` covers every port).
 */
export function portNote(
  set: PolicySet,
  port: number,
  inbound: readonly InboundPorts[],
  configFile: string,
): string | undefined {
  const rules = set.policies.flatMap((p) => p.rules);
  if (rules.length === 0 || rules.some((r) => r.to?.ports === undefined || r.to.ports.includes(port))) {
    return undefined;
  }
  const named = [...new Set(rules.flatMap((r) => r.to?.ports ?? []))].sort((a, b) => a - b);
  const example = named.length > 0 ? `, e.g. ${named.slice(0, 3).join(', ')}` : '';
  let note = `no rule covers port ${port}; rules' ports are the app's ports (the inbound listener's upstream)${example}`;
  const listener = inbound.find((l) => l.listenPort === port);
  if (listener !== undefined) {
    note += `; ${port} is the listen port of inbound listener "${listener.name}" in ${configFile}, which forwards to app port ${listener.appPort}: try --to-port ${listener.appPort}`;
  }
  return note;
}

/**
 * The inbound listeners of a proxy config document, read leniently: this is a hint, so a listener
 * whose addresses do not parse is skipped here and left to the proxy config loader to report.
 */
export function inboundPortsOf(doc: Readonly<Record<string, unknown>>): InboundPorts[] {
  if (!Array.isArray(doc.inbound)) return [];
  const ports: InboundPorts[] = [];
  for (const [i, item] of doc.inbound.slice(0, 1000).entries()) {
    if (typeof item !== 'object' || item === null) continue;
    const listener = item as Record<string, unknown>;
    const listenPort = portOf(listener.listen);
    const appPort = portOf(listener.app);
    if (listenPort === undefined || appPort === undefined) continue;
    const name = typeof listener.name === 'string' ? listener.name.slice(0, 100) : `inbound[${i}]`;
    ports.push({ name, listenPort, appPort });
  }
  return ports;
}

function portOf(address: unknown): number | undefined {
  if (typeof address !== 'string' || address.length > 300) return undefined;
  const match = /:(\d{1,5})$/.exec(address);
  const port = match === null ? Number.NaN : Number(match[1]);
  return port >= 1 && port <= 65_535 ? port : undefined;
}
