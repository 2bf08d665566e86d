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
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, operations, populate, time } from './operations.mjs';

if (!process.env.BEFORE) {
  console.error('BEFORE=<a built checkout of another commit> node packages/iolib/bench/before-after.mjs');
  process.exit(2);
}
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const MS = Number(process.env.MS ?? 200);
const versions = { old: join(process.env.BEFORE, 'packages'), new: fileURLToPath(new URL('../..', import.meta.url)) };
const base = fs.mkdtempSync(join(tmpdir(), 'iolib-before-after-'));
// Each version: its own service process (a local directory and a union)
// and its own iolib, from its own build.
const services = [];
const peers = { kernel: operations(fs, populate(join(base, 'kernel'))) };
for (const [name, packages] of Object.entries(versions)) {
  const endpoint = `before-after-${name}-${process.pid}`;
  const upper = join(base, `${name}-upper`);
  fs.mkdirSync(upper);
  const instances = {
    local: { type: 'local', root: populate(join(base, name)) },
    union: { type: 'union', upper: { type: 'local', root: upper }, lowers: [{ type: 'local', root: populate(join(base, `${name}-lower`)) }] },
  };
  const config = join(base, `${name}.json`);
  fs.writeFileSync(config, JSON.stringify({ endpoint, instances }));
  const service = spawn(process.execPath, [join(packages, 'ioservice/dist/cli.js'), '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(service.stdout, 'data');
  services.push(service);
  const { createIoLibrary } = await import(join(packages, 'iolib/dist/index.js'));
  const lib = createIoLibrary({ mounts: { [`/mnt/${name}`]: `${endpoint}/local`, [`/mnt/${name}-union`]: `${endpoint}/union` } });
  peers[name] = operations(lib, `/mnt/${name}`);
  peers[`${name}-union`] = operations(lib, `/mnt/${name}-union`);
}

const ratio = (a, b) => `${(a / b).toFixed(2)}x`;

const names = Object.keys(peers);
console.log(`# old = ${process.env.BEFORE}, new = this checkout: median µs, ${ROUNDS} interleaved rounds of ${MS} ms; node ${process.version}`);
console.log('operation'.padEnd(18) + names.map((n) => n.padStart(10)).join('') + '  old/kernel  new/kernel   old/new  union old/new');
for (const op of Object.keys(peers.kernel)) {
  const by = Object.fromEntries(names.map((n) => [n, []]));
  // Rotated order, so that each version runs first in some rounds.
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < names.length; k++) {
      const n = names[(k + r) % names.length];
      by[n].push(time(peers[n][op], MS));
    }
  }
  const m = Object.fromEntries(names.map((n) => [n, median(by[n])]));
  const ratios = [ratio(m.old, m.kernel).padStart(12), ratio(m.new, m.kernel).padStart(12), ratio(m.old, m.new).padStart(10), ratio(m['old-union'], m['new-union']).padStart(10)];
  console.log(op.padEnd(18) + names.map((n) => m[n].toFixed(2).padStart(10)).join('') + ratios.join(''));
}
for (const s of services) s.kill();
fs.rmSync(base, { recursive: true, force: true });
process.exit(0);
