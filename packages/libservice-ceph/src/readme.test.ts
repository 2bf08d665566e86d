import { afterAll, describe, expect, it } from 'vitest';
import { runReadmeExample } from '../../../tooling/test-helpers.js';
import { closeTop, clusterConf, removeTree, SKIP_NOTICE, topClient } from './fixtures/cluster.js';

const conf = clusterConf();
describe('README', () => {
  if (conf === undefined) {
    it.skip(SKIP_NOTICE, () => {});
    return;
  }
  afterAll(closeTop);
  it('runs its example as written on the cluster of CEPH_CONF and prints what it says', async () => {
    const out = runReadmeExample(new URL('../', import.meta.url), '@polytropon/libservice-ceph', ['/pools/tenant-a']);
    expect(out.trim()).toBe('2 2');
    await removeTree(await topClient(conf), `/pools/tenant-a-${process.pid}`);
  });
});
