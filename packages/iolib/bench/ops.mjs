// iolib against the kernel path and FUSE, per operation: stat, open +
// write 4 KiB + close (an existing file), pread 4 KiB, readdir (100
// entries), create + write + fsync + close. Peers, all through node:fs's sync calls except iolib's own:
//   kernel      node:fs on a local directory
//   bindfs      node:fs on a FUSE passthrough of that directory (Debian's bindfs)
//   unionfs     node:fs on unionfs-fuse (an upper over a lower directory)
//   iolib       iolib -> I/O service (polytropon-ioservice) -> local libservice, on the same kind of directory
//               (the service answers a plain local directory natively: see @polytropon/ioservice's README)
//   iolib/js    the same through a service with `nativeLocal: false` (every request in JavaScript)
//   iolib/union iolib -> I/O service -> union (upper over lower) -> local
// Interleaved rounds in a rotated order, medians, ratios. Then throughput
// of stat with 1, 2 and 4 worker threads through iolib.
//
//   pnpm --filter @polytropon/iolib bench      (after pnpm build; needs bindfs and unionfs-fuse for those peers)
// Env: IOLIB_BENCH_ROUNDS (default 5), IOLIB_BENCH_MS (per trial, default 200)
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createIoLibrary } from '../dist/index.js';
import { median, operations, populate, time as timeFor } from './operations.mjs';

const ROUNDS = Number(process.env.IOLIB_BENCH_ROUNDS ?? 5);
const MS = Number(process.env.IOLIB_BENCH_MS ?? 200);
if (!isMainThread) {
  // A throughput worker: stat through iolib for workerData.ms.
  const lib = createIoLibrary({ mounts: workerData.mounts, ...(workerData.spinNs === undefined ? {} : { spinNs: workerData.spinNs }) });
  const ops = operations(lib, workerData.root);
  parentPort.once('message', () => {
    let count = 0;
    const end = Date.now() + workerData.ms;
    while (Date.now() < end) for (let i = 0; i < 64; i++, count++) ops.stat();
    parentPort.postMessage(count);
  });
} else {
  const base = fs.mkdtempSync(join(tmpdir(), 'iolib-bench-'));
  const dir = (name) => fs.mkdirSync(join(base, name), { recursive: true }) ?? join(base, name);
  const kernelDir = dir('kernel');
  populate(kernelDir);
  const serviceDir = dir('service');
  populate(serviceDir);
  const lower = dir('lower');
  populate(lower);
  const upper = dir('upper');
  fs.mkdirSync(join(upper, 'scratch'));
  const upper2 = dir('upper2');
  fs.mkdirSync(join(upper2, 'scratch'));

  // FUSE peers, when the tools are there.
  const fuseMounts = [];
  function fuse(cmd, args, mnt) {
    try {
      fs.mkdirSync(mnt, { recursive: true });
      execFileSync(cmd, [...args, mnt], { stdio: 'ignore' });
      fuseMounts.push(mnt);
      return mnt;
    } catch (e) {
      console.log(`# ${cmd} unavailable (${e.message.split('\n')[0]}): its peer is skipped`);
      return undefined;
    }
  }
  const bindMnt = fuse('bindfs', [kernelDir], join(base, 'bindfs'));
  const unionMnt = fuse('unionfs-fuse', ['-o', 'cow', `${upper2}=RW:${lower}=RO`], join(base, 'unionfs'));

  // The I/O services, each as its own process: the default one, and one
  // answering everything in JavaScript.
  const cli = fileURLToPath(new URL('../../ioservice/dist/cli.js', import.meta.url));
  const services = [];
  async function startService(endpoint, instances, extra = {}) {
    const config = join(base, `${endpoint}.json`);
    fs.writeFileSync(config, JSON.stringify({ endpoint, instances, ...extra }));
    const service = spawn(process.execPath, [cli, '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(service.stdout, 'data');
    services.push(service);
  }
  const endpoint = `iolib-bench-${process.pid}`;
  await startService(endpoint, {
    local: { type: 'local', root: serviceDir },
    union: { type: 'union', upper: { type: 'local', root: upper }, lowers: [{ type: 'local', root: lower }] },
  });
  const jsDir = dir('service-js');
  populate(jsDir);
  await startService(`${endpoint}-js`, { local: { type: 'local', root: jsDir } }, { nativeLocal: false });
  const mounts = { '/mnt/pool/local': `${endpoint}/local`, '/mnt/pool/union': `${endpoint}/union`, '/mnt/pool/js': `${endpoint}-js/local` };
  const lib = createIoLibrary({ mounts });

  const peers = { kernel: operations(fs, kernelDir) };
  if (bindMnt) peers.bindfs = operations(fs, bindMnt);
  if (unionMnt) peers.unionfs = operations(fs, unionMnt);
  peers.iolib = operations(lib, '/mnt/pool/local');
  peers['iolib/js'] = operations(lib, '/mnt/pool/js');
  peers['iolib/union'] = operations(lib, '/mnt/pool/union');

  const time = (op) => timeFor(op, MS);
  const names = Object.keys(peers);
  console.log(`# median µs per operation, ${ROUNDS} interleaved rounds of ${MS} ms; node ${process.version}`);
  console.log('operation'.padEnd(18) + names.map((n) => n.padStart(12)).join('') + '   kernel/iolib   bindfs/iolib  unionfs/iolib-union  js/native');
  for (const op of Object.keys(peers.kernel)) {
    const by = Object.fromEntries(names.map((n) => [n, []]));
    for (const n of names) time(peers[n][op]); // warm
    for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < names.length; i++) {
      const n = names[(i + r) % names.length];
      by[n].push(time(peers[n][op]));
    }
    const m = Object.fromEntries(names.map((n) => [n, median(by[n])]));
    const ratio = (a, b) => (m[a] === undefined || m[b] === undefined ? '-' : `${(m[a] / m[b]).toFixed(2)}x`);
    console.log(op.padEnd(18) + names.map((n) => m[n].toFixed(1).padStart(12)).join('') + ratio('kernel', 'iolib').padStart(15) + ratio('bindfs', 'iolib').padStart(15) + ratio('unionfs', 'iolib/union').padStart(21) + ratio('iolib/js', 'iolib').padStart(11));
  }

  // Throughput with worker threads, each with its own clients of the service.
  console.log('\n# stat through iolib from N worker threads: operations per second (median of 3), clients spinning 50 µs (the default) or 2 µs before they sleep');
  for (const [threads, spinNs] of [[1, undefined], [2, undefined], [4, undefined], [1, 2000], [2, 2000], [4, 2000]]) {
    const runs = [];
    for (let r = 0; r < 3; r++) {
      const workers = Array.from({ length: threads }, () => new Worker(fileURLToPath(import.meta.url), { workerData: { mounts, root: '/mnt/pool/local', ms: 1000, spinNs } }));
      await Promise.all(workers.map((w) => once(w, 'online')));
      const done = workers.map((w) => once(w, 'message'));
      for (const w of workers) w.postMessage('go');
      const counts = (await Promise.all(done)).map(([c]) => c);
      runs.push(counts.reduce((a, b) => a + b, 0));
      await Promise.all(workers.map((w) => w.terminate()));
    }
    console.log(`${String(threads).padStart(2)} threads, spin ${spinNs === undefined ? '50 µs' : `${spinNs / 1000} µs`}: ${Math.round(median(runs)).toLocaleString('en')} stat/s`);
  }

  await lib.detach();
  for (const service of services) {
    service.kill('SIGTERM');
    await once(service, 'exit');
  }
  // Lazily: the peers still hold their pread descriptors.
  for (const m of fuseMounts) execFileSync('fusermount', ['-u', '-z', m]);
  fs.rmSync(base, { recursive: true, force: true });
}
