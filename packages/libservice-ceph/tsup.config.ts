import { packageBuild } from '../../tooling/tsup.js';

export default packageBuild;
