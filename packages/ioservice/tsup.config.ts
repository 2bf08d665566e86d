import { defineConfig } from 'tsup';
import { packageBuild } from '../../tooling/tsup.js';

// The library, and the standalone service's command (ESM only: it is run, not imported).
export default defineConfig([
  { ...packageBuild, entry: { index: 'src/index.ts' }, clean: false },
  { ...packageBuild, entry: { cli: 'src/cli.ts' }, format: ['esm'], dts: false, clean: false },
]);
