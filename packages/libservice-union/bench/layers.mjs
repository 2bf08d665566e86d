// Lookups through the union with 1, 4 and 16 lower layers, against the
// local libservice and node:fs on the same directory (its promise API, and
// its sync calls, which the local libservice makes inline): stat, open + read
// 4 KiB + close, readdir of 1,000 entries, create + write 4 KiB + close.
// The files live in the lowest layer, so a lookup passes every layer above;
// every layer also holds 100 files of its own. Peers run interleaved, in a
// rotated order each round; medians over rounds, and ratios.
//
//   pnpm --filter @polytropon/libservice-union bench     (after pnpm build)
// Env: UNION_BENCH_ROUNDS (default 7), UNION_BENCH_MS (per trial, default 250)

import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { constants } from 'node:fs';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalLibservice } from '@polytropon/libservice';
import { UnionLibservice } from '../dist/index.js';

const ROUNDS = Number(process.env.UNION_BENCH_ROUNDS ?? 7);
const MS = Number(process.env.UNION_BENCH_MS ?? 250);
const FILES = 1000;
const base = mkdtempSync(join(tmpdir(), 'union-bench-'));
const page = Buffer.alloc(4096, 7);

// The data: the lowest layer, which local and node:fs serve directly too.
const dataDir = join(base, 'data-layer');
mkdirSync(join(dataDir, 'srv/data'), { recursive: true });
for (let i = 0; i < FILES; i++) writeFileSync(join(dataDir, 'srv/data', `f${i}`), page);

function layerDir(i) {
  const d = join(base, `layer${i}`);
  mkdirSync(join(d, 'srv/data'), { recursive: true });
  mkdirSync(join(d, `own${i}`));
  for (let j = 0; j < 100; j++) writeFileSync(join(d, `own${i}`, `g${j}`), 'x');
  return d;
}
const upperLayers = Array.from({ length: 15 }, (_, i) => layerDir(i));

async function union(layers) {
  const upperDir = mkdtempSync(join(base, 'upper-'));
  const upper = await LocalLibservice.create({ root: upperDir });
  const lowers = [];
  for (const d of [...upperLayers.slice(0, layers - 1), dataDir]) lowers.push(await LocalLibservice.create({ root: d }));
  return UnionLibservice.create({ upper, lowers });
}

const scratch = mkdtempSync(join(base, 'scratch-'));
const local = await LocalLibservice.create({ root: dataDir });
const scratchLocal = await LocalLibservice.create({ root: scratch });
const nodeFs = {
  stat: (p) => fsp.stat(dataDir + p),
  async read4k(p) {
    const h = await fsp.open(dataDir + p, 'r');
    await h.read(page, 0, 4096, 0);
    await h.close();
  },
  readdir: (p) => fsp.readdir(dataDir + p, { withFileTypes: true }),
  async create(p) {
    const h = await fsp.open(scratch + p, 'w');
    await h.write(page, 0, 4096, 0);
    await h.close();
  },
};
// node:fs's sync calls, what the local libservice makes inline.
const nodeFsSync = {
  stat: async (p) => fs.statSync(dataDir + p),
  async read4k(p) {
    const fd = fs.openSync(dataDir + p, 'r');
    fs.readSync(fd, page, 0, 4096, 0);
    fs.closeSync(fd);
  },
  readdir: async (p) => fs.readdirSync(dataDir + p, { withFileTypes: true }),
  async create(p) {
    const fd = fs.openSync(scratch + p, 'w');
    fs.writeSync(fd, page, 0, 4096, 0);
    fs.closeSync(fd);
  },
};
function ops(s, createIn = s) {
  return {
    stat: (p) => s.stat(p),
    async read4k(p) {
      const h = await s.open(p, constants.O_RDONLY);
      await s.read(h, page, 0, 4096, 0);
      await s.close(h);
    },
    readdir: (p) => s.readdir(p),
    async create(p) {
      const h = await createIn.open(p, constants.O_CREAT | constants.O_TRUNC | constants.O_WRONLY, 0o644);
      await createIn.write(h, page, 0, 4096, 0);
      await createIn.close(h);
    },
  };
}

const peers = {
  'node:fs': nodeFs,
  'fs sync': nodeFsSync,
  local: ops(local, scratchLocal),
  'union 1': ops(await union(1)),
  'union 4': ops(await union(4)),
  'union 16': ops(await union(16)),
};

let created = 0;
const args = {
  stat: (i) => `/srv/data/f${i % FILES}`,
  read4k: (i) => `/srv/data/f${i % FILES}`,
  readdir: () => '/srv/data',
  create: () => `/c${created++ % 2000}`,
};

/** Microseconds per operation, median of batches for MS. */
async function time(op, arg) {
  const per = [];
  const end = Date.now() + MS;
  let i = 0;
  while (Date.now() < end) {
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < 16; k++) await op(arg(i++));
    per.push(Number(process.hrtime.bigint() - t0) / 16 / 1000);
  }
  return per.sort((a, b) => a - b)[per.length >> 1];
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const names = Object.keys(peers);
const results = {};
for (const op of Object.keys(args)) {
  const byPeer = Object.fromEntries(names.map((n) => [n, []]));
  const ratio16 = [];
  // Warm every peer (the lower cache fills on first use, as in a running container).
  for (const n of names) await time(peers[n][op], args[op]);
  for (let r = 0; r < ROUNDS; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    const round = {};
    for (const n of order) round[n] = await time(peers[n][op], args[op]);
    for (const n of names) byPeer[n].push(round[n]);
    ratio16.push(round['union 16'] / round['union 1']);
  }
  results[op] = { ...Object.fromEntries(names.map((n) => [n, median(byPeer[n])])), ratio16: median(ratio16) };
}

const cell = (x) => x.toFixed(1).padStart(9);
console.log(`\nmedian µs per operation (${ROUNDS} interleaved rounds of ${MS} ms)\n`);
console.log('operation'.padEnd(12) + names.map((n) => n.padStart(9)).join('') + '  16/1 layers  union1/local  local/fs sync');
for (const [op, r] of Object.entries(results)) {
  console.log(
    op.padEnd(12) + names.map((n) => cell(r[n])).join('') +
      `${r.ratio16.toFixed(2).padStart(13)}x${(r['union 1'] / r.local).toFixed(2).padStart(13)}x${(r.local / r['fs sync']).toFixed(2).padStart(14)}x`,
  );
}
const worst = Math.max(...Object.values(results).map((r) => r.ratio16));
console.log(`\ngoal: a lookup through 16 layers costs at most 2x one layer: worst 16/1 ratio ${worst.toFixed(2)}x -> ${worst <= 2 ? 'met' : 'NOT met'}`);
rmSync(base, { recursive: true, force: true });
