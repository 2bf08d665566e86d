import { defineConfig } from 'tsup';
import { packageBuild } from '../../tooling/tsup.js';

// Two entry points: the library, and the --import hook.
export default defineConfig({ ...packageBuild, entry: { index: 'src/index.ts', register: 'src/register.ts' } });
