// The tsup configuration every package shares: ESM and CJS with
// declarations, for Node 20 and later.
import { defineConfig } from 'tsup';

export const packageBuild = defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  // import.meta.url in the CJS build, for the native loaders.
  shims: true,
  target: 'node20',
});
