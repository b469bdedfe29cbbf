/** Dependency direction (STYLE.md §2): spiffe is the shared core; components never reach into each other. */
module.exports = {
  forbidden: [
    { name: 'spiffe-is-the-core', severity: 'error', from: { path: '^src/spiffe' }, to: { path: '^src/(server|agent|proxy|attestors|rotation|sdk)' } },
    { name: 'server-not-agent-proxy', severity: 'error', from: { path: '^src/server' }, to: { path: '^src/(agent|proxy|sdk)' } },
    { name: 'agent-not-server-proxy', severity: 'error', from: { path: '^src/agent' }, to: { path: '^src/(server|proxy)' } },
    { name: 'proxy-only-spiffe-sdk', severity: 'error', from: { path: '^src/proxy' }, to: { path: '^src/(server|agent|attestors|rotation)' } },
    // The local mesh drives server, agent and proxy as child processes through their binaries, CLIs
    // and admin endpoints, as an operator would; it never links their code (nor any npm package).
    { name: 'mesh-only-spiffe-and-builtins', severity: 'error', from: { path: '^src/mesh' }, to: { pathNot: '^src/(spiffe|mesh)/', dependencyTypesNot: ['core'] } },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
