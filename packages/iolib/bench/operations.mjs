// What bench/ops.mjs and bench/before-after.mjs time: the operations on
// any node:fs-shaped object, the tree they run on, and the timing of one
// trial.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { addressOf } from '@polytropon/smo-copy';

export const page = Buffer.alloc(4096, 7);

/**
 * A large read's buffer, starting on a page. Buffer.alloc(1 MiB) starts 16
 * bytes into a page, and on some hosts the kernel's copy into such a
 * destination is several times slower (on the 2-vCPU EPYC VMs here a
 * 1 MiB pread took 450-820 µs at page offsets 1-24 and 65-90 µs at 0, 32,
 * 48, 64 or 257): the kernel path would be measured at its worst.
 */
const mib = (() => {
  const b = Buffer.alloc((1 << 20) + 4096);
  const skip = (4096 - (Number(addressOf(b)) % 4096)) % 4096;
  return b.subarray(skip, skip + (1 << 20));
})();

/** Makes `dir` hold what the operations need: data/f0..f99 of 4 KiB, data/big of 1 MiB, and scratch/. */
export function populate(dir) {
  fs.mkdirSync(join(dir, 'data'), { recursive: true });
  fs.mkdirSync(join(dir, 'scratch'), { recursive: true });
  for (let i = 0; i < 100; i++) fs.writeFileSync(join(dir, 'data', `f${i}`), page);
  fs.writeFileSync(join(dir, 'data', 'big'), Buffer.alloc(1 << 20, 3));
  return dir;
}

/** The operations, on any node:fs-shaped object rooted at `root` (a populated tree). */
export function operations(f, root) {
  let n = 0;
  const fd = f.openSync(`${root}/data/f0`, 'r');
  const big = f.openSync(`${root}/data/big`, 'r');
  return {
    stat: () => f.statSync(`${root}/data/f${n++ % 100}`),
    // 'r+' on an existing file: a truncate ('w') would make ext4 flush the
    // data at close (auto_da_alloc), which is not what this measures.
    'open+write+close': () => {
      const w = f.openSync(`${root}/data/f${n++ % 100}`, 'r+');
      f.writeSync(w, page, 0, 4096, 0);
      f.closeSync(w);
    },
    pread4k: () => f.readSync(fd, page, 0, 4096, 0),
    pread1m: () => f.readSync(big, mib, 0, 1 << 20, 0),
    readdir: () => f.readdirSync(`${root}/data`),
    'create+fsync': () => {
      const w = f.openSync(`${root}/scratch/s${n++ % 100}`, 'w');
      f.writeSync(w, page, 0, 4096, 0);
      f.fsyncSync(w);
      f.closeSync(w);
    },
  };
}

/** Median µs per call of `op` (given the call's number) over `ms` milliseconds, in batches of `batch`. */
export function time(op, ms, batch = 16) {
  const per = [];
  const end = Date.now() + ms;
  let n = 0;
  while (Date.now() < end) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) op(n++);
    per.push(Number(process.hrtime.bigint() - t0) / batch / 1000);
  }
  return per.sort((a, b) => a - b)[per.length >> 1];
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
