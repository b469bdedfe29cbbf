import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: e2e files start real servers, so keep parallelism modest.
    maxWorkers: 2,
    // Builds dist/, puts the run's temp dirs in one place and fails the run on leftovers.
    globalSetup: ['test/support/global-setup.ts'],
    // Removes the temp dirs test helpers made, after each file.
    setupFiles: ['test/support/file-cleanup.ts'],
    // The JSON report feeds the pass/fail totals line that .ci/run prints.
    reporters: ['default', ['json', { outputFile: '.test-results/vitest.json' }]],
  },
});
