// Preloaded (`node --import`) into a sidecar under test: on SIGUSR2 it prints one JSON line with
// the CommonJS modules loaded so far. require.cache holds every CommonJS file the process evaluated,
// including packages an ES module imported, so a package that never loaded is absent from it.
// The line also carries the V8 young generation's size (new_space, both semi-spaces, in bytes) and
// the resident set, for the memory tests.
import { createRequire } from 'node:module';
import { getHeapSpaceStatistics } from 'node:v8';

const require = createRequire(import.meta.url);
process.on('SIGUSR2', () => {
  const newSpace = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
  const census = {
    msg: 'module census',
    modules: Object.keys(require.cache),
    newSpaceBytes: newSpace?.space_size,
    rssBytes: process.memoryUsage.rss(),
  };
  process.stdout.write(`${JSON.stringify(census)}\n`);
});
