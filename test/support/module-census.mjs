// Preloaded (`node --import`) into a sidecar under test: on SIGUSR2 it prints one JSON line with
// the CommonJS modules loaded so far. require.cache holds every CommonJS file the process evaluated,
// including packages an ES module imported, so a package that never loaded is absent from it.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
process.on('SIGUSR2', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'module census', modules: Object.keys(require.cache) })}\n`);
});
