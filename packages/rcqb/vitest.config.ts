import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
    // Native blocking calls and futexes: run files in forks, one at a time
    // on these 2-core machines.
    pool: 'forks',
    fileParallelism: false,
    // scripts/test.sh sums these reports into the CI's closing line.
    reporters: ['default', 'json'],
    outputFile: { json: `../../.test-results/rcqb-${process.env.VITEST_JSON_SUFFIX ?? 'local'}.json` },
  },
});
