// Randomized comparison with node:fs: the same sequence of operations runs
// on the libservice under test and on node:fs in a temporary directory, and
// every result (value or error code) must match.
import * as fc from 'fast-check';
import type { Libservice } from '../contract.js';
import { parseOpenFlags } from '../flags.js';

/** One step of a sequence. */
export type Step =
  | { op: 'write'; path: string; flags: 'w' | 'a' | 'wx' | 'r+'; data: number[] }
  | { op: 'read' | 'stat' | 'lstat' | 'readdir' | 'readlink' | 'mkdir' | 'rmdir' | 'unlink'; path: string }
  | { op: 'rename'; from: string; to: string; noReplace: boolean }
  | { op: 'link'; from: string; to: string }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'truncate'; path: string; length: number }
  | { op: 'chmod'; path: string; mode: number };

/** A pair to compare: the service under test and node:fs on a directory in the same starting state. */
export interface OraclePair {
  service: Libservice;
  oracle: Libservice;
  dispose(): Promise<void>;
}

const name = fc.constantFrom('a', 'b', 'c');
const path = fc.array(name, { minLength: 1, maxLength: 3 }).map((p) => '/' + p.join('/'));

/**
 * Arbitrary steps over a small namespace, so that they collide often.
 * Symlink targets stay relative and inside the tree: the oracle is
 * unconfined node:fs, where '..' at the top or an absolute target would
 * leave the directory.
 */
export const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('write' as const), path, flags: fc.constantFrom('w' as const, 'a' as const, 'wx' as const, 'r+' as const), data: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 24 }) }),
  fc.record({ op: fc.constantFrom('read' as const, 'stat' as const, 'lstat' as const, 'readdir' as const, 'readlink' as const, 'mkdir' as const, 'rmdir' as const, 'unlink' as const), path }),
  fc.record({ op: fc.constant('rename' as const), from: path, to: path, noReplace: fc.boolean() }),
  fc.record({ op: fc.constant('link' as const), from: path, to: path }),
  fc.record({ op: fc.constant('symlink' as const), target: fc.constantFrom('a', 'c', 'b', 'b/c'), path }),
  fc.record({ op: fc.constant('truncate' as const), path, length: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ op: fc.constant('chmod' as const), path, mode: fc.constantFrom(0o600, 0o644, 0o755) }),
);

type Outcome = { ok: unknown } | { error: string };

async function readAll(s: Libservice, p: string): Promise<string> {
  const h = await s.open(p, parseOpenFlags('r'));
  try {
    const buf = new Uint8Array(4096);
    const n = await s.read(h, buf, 0, buf.length, null);
    return Buffer.from(buf.subarray(0, n)).toString('hex');
  } finally {
    await s.close(h);
  }
}

/** What of a stat the suite compares: type, permissions, and for non-directories size and links. */
function statView(st: { mode: number; size: number; nlink: number }) {
  const type = st.mode >>> 12;
  return type === 4 ? { type, perm: st.mode & 0o7777 } : { type, perm: st.mode & 0o7777, size: st.size, nlink: st.nlink };
}

/** Runs one step; the result as comparable data. */
export async function runStep(s: Libservice, step: Step): Promise<Outcome> {
  try {
    switch (step.op) {
      case 'write': {
        const h = await s.open(step.path, parseOpenFlags(step.flags), 0o644);
        try {
          return { ok: await s.write(h, Uint8Array.from(step.data), 0, step.data.length, null) };
        } finally {
          await s.close(h);
        }
      }
      case 'read':
        return { ok: await readAll(s, step.path) };
      case 'stat':
        return { ok: statView(await s.stat(step.path)) };
      case 'lstat':
        return { ok: statView(await s.lstat(step.path)) };
      case 'readdir':
        return { ok: (await s.readdir(step.path)).map((e) => `${e.name}:${e.type}`).sort() };
      case 'readlink':
        return { ok: await s.readlink(step.path) };
      case 'mkdir':
        return { ok: await s.mkdir(step.path, 0o755) };
      case 'rmdir':
        return { ok: await s.rmdir(step.path) };
      case 'unlink':
        return { ok: await s.unlink(step.path) };
      case 'rename':
        return { ok: await s.rename(step.from, step.to, { noReplace: step.noReplace }) };
      case 'link':
        return { ok: await s.link(step.from, step.to) };
      case 'symlink':
        return { ok: await s.symlink(step.target, step.path) };
      case 'truncate':
        return { ok: await s.truncate(step.path, step.length) };
      case 'chmod':
        return { ok: await s.chmod(step.path, step.mode) };
    }
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') throw e;
    return { error: code };
  }
}

/** A walk of the whole tree (paths, types, contents of files) for a final comparison. */
export async function snapshot(s: Libservice, dir = '/'): Promise<string[]> {
  const out: string[] = [];
  const entries = (await s.readdir(dir)).sort((x, y) => (x.name < y.name ? -1 : 1));
  for (const e of entries) {
    const p = (dir === '/' ? '' : dir) + '/' + e.name;
    if (e.type === 4) out.push(`${p}/`, ...(await snapshot(s, p)));
    else if (e.type === 10) out.push(`${p} -> ${await s.readlink(p)}`);
    else out.push(`${p} = ${await readAll(s, p)}`);
  }
  return out;
}

/**
 * The property: for every generated sequence, each step gives the same
 * outcome on the service as on node:fs, and the trees end up the same.
 * Throws (with fast-check's shrunk counterexample) when they differ.
 */
export async function assertMatchesOracle(createPair: () => Promise<OraclePair>, options: { runs?: number; seed?: number; maxSteps?: number } = {}): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(stepArbitrary, { minLength: 1, maxLength: options.maxSteps ?? 30 }), async (steps) => {
      const pair = await createPair();
      try {
        for (const [i, step] of steps.entries()) {
          const expected = await runStep(pair.oracle, step);
          const actual = await runStep(pair.service, step);
          if (JSON.stringify(actual) !== JSON.stringify(expected))
            throw new Error(`step ${i} ${JSON.stringify(step)}: node:fs gave ${JSON.stringify(expected)}, the service ${JSON.stringify(actual)}`);
        }
        const [want, got] = [await snapshot(pair.oracle), await snapshot(pair.service)];
        if (JSON.stringify(want) !== JSON.stringify(got))
          throw new Error(`trees differ:\nnode:fs ${JSON.stringify(want)}\nservice ${JSON.stringify(got)}`);
      } finally {
        await pair.dispose();
      }
    }),
    { numRuns: options.runs ?? 100, ...(options.seed === undefined ? {} : { seed: options.seed }) },
  );
}
