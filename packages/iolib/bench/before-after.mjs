// Before and after: this checkout's iolib and I/O service against another
// checkout's (an older commit, built), in one process, each with its own
// service process serving a local directory and a union, beside node:fs
// on the kernel path; interleaved rounds in a rotated order, medians,
// ratios. For measuring a change where figures from separate runs cannot
// be compared (the VM's placement moves).
//
//   git worktree add /tmp/before <commit> && (cd /tmp/before && bash scripts/setup.sh)
//   BEFORE=/tmp/before node packages/iolib/bench/before-after.mjs
// Env: ROUNDS (default 7), MS (per trial, default 200)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
if (!process.env.BEFORE) {
  console.error('BEFORE=<a built checkout of another commit> node packages/iolib/bench/before-after.mjs');
  process.exit(2);
}
const trees = { old: join(process.env.BEFORE, 'packages'), new: fileURLToPath(new URL('../..', import.meta.url)) };
const base = fs.mkdtempSync(join(tmpdir(), 'iolib-before-after-'));
const page = Buffer.alloc(4096, 7);
const populate = (d) => { fs.mkdirSync(join(d, 'data'), { recursive: true }); for (let i = 0; i < 100; i++) fs.writeFileSync(join(d, 'data', `f${i}`), page); };
const services = [];
const peers = {};
function ops(f, root) {
  let n = 0; const fd = f.openSync(`${root}/data/f0`, 'r');
  return {
    stat: () => f.statSync(`${root}/data/f${n++ % 100}`),
    'open+write+close': () => { const w = f.openSync(`${root}/data/f${n++ % 100}`, 'r+'); f.writeSync(w, page, 0, 4096, 0); f.closeSync(w); },
    pread4k: () => f.readSync(fd, page, 0, 4096, 0),
    readdir: () => f.readdirSync(`${root}/data`),
  };
}
populate(join(base, 'kernel'));
peers.kernel = ops(fs, join(base, 'kernel'));
for (const [name, M] of Object.entries(trees)) {
  const dir = join(base, name); populate(dir);
  const endpoint = `ab-${name}-${process.pid}`;
  const up = join(base, `${name}-up`), low = join(base, `${name}-low`); fs.mkdirSync(up); populate(low);
  fs.writeFileSync(join(base, `${name}.json`), JSON.stringify({ endpoint, instances: { local: { type: 'local', root: dir }, union: { type: 'union', upper: { type: 'local', root: up }, lowers: [{ type: 'local', root: low }] } } }));
  const svc = spawn(process.execPath, [`${M}/ioservice/dist/cli.js`, '--config', join(base, `${name}.json`)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(svc.stdout, 'data'); services.push(svc);
  const { createIoLibrary } = await import(`${M}/iolib/dist/index.js`);
  const lib = createIoLibrary({ mounts: { [`/mnt/${name}`]: `${endpoint}/local`, [`/mnt/${name}-u`]: `${endpoint}/union` } });
  peers[name] = ops(lib, `/mnt/${name}`);
  peers[`${name}-union`] = ops(lib, `/mnt/${name}-u`);
}
const MS = Number(process.env.MS ?? 200), ROUNDS = Number(process.env.ROUNDS ?? 7);
function time(op) { const per = []; const end = Date.now() + MS; while (Date.now() < end) { const t0 = process.hrtime.bigint(); for (let i = 0; i < 16; i++) op(); per.push(Number(process.hrtime.bigint() - t0) / 16 / 1000); } return per.sort((a, b) => a - b)[per.length >> 1]; }
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const names = Object.keys(peers);
console.log(`# old = ${process.env.BEFORE}, new = this checkout: median µs, ${ROUNDS} interleaved rounds of ${MS} ms; node ${process.version}`);
console.log('operation'.padEnd(18) + names.map((n) => n.padStart(10)).join('') + '  old/kernel  new/kernel   old/new  union old/new');
for (const op of Object.keys(peers.kernel)) {
  const by = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < ROUNDS; r++) for (let k = 0; k < names.length; k++) { const n = names[(k + r) % names.length]; by[n].push(time(peers[n][op])); }
  const m = Object.fromEntries(names.map((n) => [n, med(by[n])]));
  console.log(op.padEnd(18) + names.map((n) => m[n].toFixed(2).padStart(10)).join('') + (m.old / m.kernel).toFixed(2).padStart(11) + 'x' + (m.new / m.kernel).toFixed(2).padStart(11) + 'x' + (m.old / m.new).toFixed(2).padStart(9) + 'x' + (m['old-union'] / m['new-union']).toFixed(2).padStart(9) + 'x');
}
for (const s of services) s.kill();
fs.rmSync(base, { recursive: true });
process.exit(0);
