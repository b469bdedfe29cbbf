// How every Sigil daemon (server, agent, proxy) learns it should stop: the first SIGINT or SIGTERM.
// The listeners are removed once it resolves, so a second signal gets Node's default (exit at once).
export function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
