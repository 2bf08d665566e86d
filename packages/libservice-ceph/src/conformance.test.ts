// The libservice conformance suite against CephFS: the client's async
// operations, its sync twins, and a union whose branches are both on Ceph.
import { afterAll, describe, it } from 'vitest';
import type { Libservice } from '@polytropon/libservice';
import { describeConformance, syncTwins } from '@polytropon/libservice/conformance';
import { UnionLibservice } from '@polytropon/libservice-union';
import { closeTop, clusterConf, freshService, SKIP_NOTICE } from './fixtures/cluster.js';

const conf = clusterConf();
if (conf === undefined) {
  describe('CephFS conformance', () => it.skip(SKIP_NOTICE, () => {}));
} else {
  afterAll(closeTop);
  // Unmounting a libcephfs client takes about a second (its tick), and every
  // randomized run makes a fresh one: fewer runs than for local services.
  const options = { timeout: 600_000, runs: Number(process.env.CEPH_CONFORMANCE_RUNS ?? 20) };
  describeConformance('CephFS through libcephfs', () => freshService(conf), options);
  describeConformance('CephFS, the sync twins', async () => {
    const t = await freshService(conf);
    return { service: syncTwins(t.service), dispose: t.dispose };
  }, options);
  describeConformance('union with its upper and lower branches on CephFS', async () => {
    const upper = await freshService(conf);
    const lower = await freshService(conf);
    const service: Libservice = await UnionLibservice.create({ upper: upper.service, lowers: [lower.service] });
    return {
      service,
      dispose: async () => {
        await Promise.all([upper.service.unmount(), lower.service.unmount()]);
        await Promise.all([upper.dispose(), lower.dispose()]);
      },
    };
  }, options);
}
