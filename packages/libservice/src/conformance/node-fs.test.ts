// The suite against plain node:fs: what it expects is what Linux does.
import { describeConformance, nodeFsLibservice, temporaryDirectory } from './index.js';

describeConformance('node:fs (the reference)', async () => {
  const dir = await temporaryDirectory('nodefs-');
  return { service: nodeFsLibservice(dir.path), dispose: dir.remove };
}, { nodeFsPaths: true });
