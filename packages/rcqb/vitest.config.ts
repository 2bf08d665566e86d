import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
    // Native blocking calls and futexes: run files in forks, one at a time
    // on these 2-core machines.
    pool: 'forks',
    fileParallelism: false,
  },
});
