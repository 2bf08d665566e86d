// The vitest configuration every package shares: `packages/X/vitest.config.ts`
// is `export default packageTests('X')`.
import { defineConfig } from 'vitest/config';

export function packageTests(name: string) {
  return defineConfig({
    test: {
      include: ['src/**/*.test.ts'],
      testTimeout: 60_000,
      // Native blocking calls and futexes: run files in forks, one at a time
      // on these 2-core machines.
      pool: 'forks',
      fileParallelism: false,
      // scripts/test.sh sums these reports into the CI's closing line.
      reporters: ['default', 'json'],
      // One report per Node major, so the runs on Node 20 and 24 both count.
      outputFile: { json: `../../.test-results/${name}-node${process.versions.node.split('.')[0]}.json` },
    },
  });
}
