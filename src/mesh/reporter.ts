// What sigil-mesh tells its user: each component as it comes up with how long it took, then what to
// try, then how it stopped. `text` is for people; `json` writes one JSON object per line (progress,
// then a `ready` line with every URL, command and pid, then `stopped`), for scripts and tests.

export interface Sink {
  write(chunk: string): unknown;
}

/** Everything the `ready` report names. */
export interface MeshSummary {
  /** The mesh directory, as given (relative to the working directory when it was). */
  readonly dir: string;
  readonly ports: { readonly first: number; readonly last: number };
  readonly urls: {
    /** frontend → backend through the frontend's sidecar: allowed. */
    readonly allowed: string;
    /** backend → frontend through the backend's sidecar: 403. */
    readonly denied: string;
    readonly frontendMetrics: string;
    readonly backendMetrics: string;
    readonly serverMetrics: string;
    readonly agentMetrics: string;
  };
  readonly commands: {
    readonly watch: string;
    readonly entries: string;
  };
  readonly sockets: {
    readonly serverAdmin: string;
    readonly agentAdmin: string;
    readonly workloadApi: string;
  };
  readonly configDir: string;
  readonly logDir: string;
  /** Each component's pid, by name. */
  readonly pids: Readonly<Record<string, number>>;
}

export interface Reporter {
  note(message: string): void;
  starting(dir: string, ports: { first: number; last: number }): void;
  up(component: string, detail: string, elapsedMs: number): void;
  ready(summary: MeshSummary, elapsedMs: number): void;
  stopping(reason: string): void;
  stopped(names: readonly string[], elapsedMs: number, leftovers: readonly string[]): void;
  failed(message: string, component: string | null, logFile: string | null, logTail: string): void;
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

export function textReporter(out: Sink, err: Sink): Reporter {
  return {
    note: (message) => out.write(`  ${message}\n`),
    starting: (dir, ports) =>
      out.write(`Starting a local Sigil mesh in ${dir} (ports ${ports.first}-${ports.last})\n`),
    up: (component, detail, ms) =>
      out.write(`✓ ${component.padEnd(17)} ${`${seconds(ms).toFixed(1)}s`.padStart(5)}  ${detail}\n`),
    ready: (s, ms) =>
      out.write(`
Local mesh up in ${seconds(ms).toFixed(1)}s. Try:

  curl -s ${s.urls.allowed}
      frontend -> backend over mTLS: the backend answers with the caller's ID it saw,
      "peer_id": "spiffe://sigil.local/frontend"
  curl -si ${s.urls.denied}
      backend -> frontend: 403, the frontend's policy refuses the backend
  ${s.commands.watch}
      the SVIDs this user gets, printed again at every rotation (about once a minute)
  ${s.commands.entries}
      the registration entries
  curl -s ${s.urls.frontendMetrics}
      the frontend sidecar's metrics; the backend sidecar's are at ${s.urls.backendMetrics},
      the server's at ${s.urls.serverMetrics} and the agent's at ${s.urls.agentMetrics}

Configs and policies: ${s.configDir} (policies reload on save). Logs: ${s.logDir}
Ctrl-C to stop.
`),
    stopping: (reason) => out.write(`\nStopping (${reason})…\n`),
    stopped: (names, ms, leftovers) =>
      leftovers.length === 0
        ? out.write(
            `✓ stopped ${names.join(', ')} in ${seconds(ms).toFixed(1)}s; no process, socket or port left\n`,
          )
        : err.write(`sigil-mesh: stopped, but ${leftovers.join('; ')}\n`),
    failed: (message, component, logFile, tail) => {
      err.write(`✗ ${component ? `${component}: ` : ''}${message}\n`);
      if (logFile) err.write(`  last lines of ${logFile}:\n${indent(tail || '(empty)')}\n`);
    },
  };
}

export function jsonReporter(out: Sink): Reporter {
  const line = (event: string, fields: Record<string, unknown>) =>
    out.write(`${JSON.stringify({ event, ...fields })}\n`);
  return {
    note: (message) => line('note', { message }),
    starting: (dir, ports) => line('starting', { dir, ports }),
    up: (component, detail, ms) => line('up', { component, detail, seconds: seconds(ms) }),
    ready: (s, ms) =>
      line('ready', {
        seconds: seconds(ms),
        dir: s.dir,
        ports: s.ports,
        urls: {
          allowed: s.urls.allowed,
          denied: s.urls.denied,
          frontend_metrics: s.urls.frontendMetrics,
          backend_metrics: s.urls.backendMetrics,
        },
        commands: s.commands,
        sockets: {
          server_admin: s.sockets.serverAdmin,
          agent_admin: s.sockets.agentAdmin,
          workload_api: s.sockets.workloadApi,
        },
        config_dir: s.configDir,
        log_dir: s.logDir,
        pids: s.pids,
      }),
    stopping: (reason) => line('stopping', { reason }),
    stopped: (names, ms, leftovers) =>
      line('stopped', { components: names, seconds: seconds(ms), leftovers }),
    failed: (message, component, logFile, tail) =>
      line('failed', { component, error: message, log_file: logFile, log_tail: tail }),
  };
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
