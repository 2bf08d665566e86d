import { LocalLibservice, type Libservice } from '@polytropon/libservice';
import { describeConformance, temporaryDirectory } from '@polytropon/libservice/conformance';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UnionLibservice } from './union.js';

/** A union of an empty upper over `lowers` empty lower directories. */
async function emptyUnion(lowers: number, syscalls: 'inline' | 'threadpool' = 'inline') {
  const dir = await temporaryDirectory('union-');
  const branch = async (name: string) => {
    mkdirSync(join(dir.path, name));
    return LocalLibservice.create({ root: join(dir.path, name), syscalls });
  };
  const upper = await branch('upper');
  const lowerBranches: Libservice[] = [];
  for (let i = 0; i < lowers; i++) lowerBranches.push(await branch(`lower${i}`));
  const service = await UnionLibservice.create({ upper, lowers: lowerBranches });
  return {
    service,
    dispose: async () => {
      for (const b of [upper, ...lowerBranches]) await b.unmount();
      await dir.remove();
    },
  };
}

describeConformance('union of an empty upper over one empty lower', () => emptyUnion(1));
describeConformance('union with no lower branch', () => emptyUnion(0));
// Calls that really wait (libuv's pool) interleave lookups with changes: the caches must keep up.
describeConformance('union over one lower, branches on the thread pool', () => emptyUnion(1, 'threadpool'));
