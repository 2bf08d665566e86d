import { defineConfig } from 'tsup';
import { packageBuild } from '../../tooling/tsup.js';

// Two entry points: the package, and the conformance suite (which imports vitest).
export default defineConfig({ ...packageBuild, entry: { index: 'src/index.ts', conformance: 'src/conformance/index.ts' } });
