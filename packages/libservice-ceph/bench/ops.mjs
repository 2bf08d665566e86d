// The Ceph libservice against ceph-fuse, per operation, on one cluster:
// stat, open + write 4 KiB + close (an existing file), pread 4 KiB, readdir
// (100 entries), create + close + unlink, mkdir + rmdir, create + write
// 4 KiB + fsync + close. Peers:
//   libservice   CephLibservice (one libcephfs client in this process)
//   ceph-fuse    node:fs on a ceph-fuse mount of the same directory (the
//                FUSE client of the Danaus comparison)
//   kernel       node:fs on `mount -t ceph`, where the machine allows it
// Sync calls against sync calls (the libservice's sync twins, node:fs's
// *Sync), then async against async (promises; libuv's pool on both sides).
// Interleaved rounds in a rotated order, medians, ratios.
//
//   scripts/ceph-dev-cluster.sh start && CEPH_CONF=/tmp/polytropon-ceph/ceph.conf pnpm --filter @polytropon/libservice-ceph bench
// Env: CEPH_BENCH_ROUNDS (default 5), CEPH_BENCH_MS (per trial, default 200)
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CephLibservice } from '../dist/index.js';

const ROUNDS = Number(process.env.CEPH_BENCH_ROUNDS ?? 5);
const MS = Number(process.env.CEPH_BENCH_MS ?? 200);
const conf = process.env.CEPH_CONF;
if (conf === undefined || !fs.existsSync(conf)) {
  console.log('# libservice-ceph bench: no cluster (start one with scripts/ceph-dev-cluster.sh start and set CEPH_CONF): skipped');
  process.exit(0);
}
const { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC } = fs.constants;
const page = Buffer.alloc(4096, 7);

/** The operations through node:fs's sync calls, on a mount of the tree. */
function fsSync(root) {
  let n = 0;
  const fd = fs.openSync(`${root}/data/f0`, 'r');
  return {
    stat: () => fs.statSync(`${root}/data/f${n++ % 100}`),
    'open+write+close': () => {
      const w = fs.openSync(`${root}/data/f${n++ % 100}`, 'r+');
      fs.writeSync(w, page, 0, 4096, 0);
      fs.closeSync(w);
    },
    pread4k: () => fs.readSync(fd, page, 0, 4096, 0),
    readdir: () => fs.readdirSync(`${root}/data`, { withFileTypes: true }),
    'create+close+unlink': () => {
      const p = `${root}/scratch/c${n++}`;
      fs.closeSync(fs.openSync(p, 'wx'));
      fs.unlinkSync(p);
    },
    'mkdir+rmdir': () => {
      const p = `${root}/scratch/d${n++}`;
      fs.mkdirSync(p);
      fs.rmdirSync(p);
    },
    'create+fsync': () => {
      const w = fs.openSync(`${root}/scratch/s${n++ % 100}`, 'w');
      fs.writeSync(w, page, 0, 4096, 0);
      fs.fsyncSync(w);
      fs.closeSync(w);
    },
  };
}

/** The same through node:fs's promises. */
function fsAsync(root) {
  let n = 0;
  const f = fs.promises;
  const opened = f.open(`${root}/data/f0`, 'r');
  return {
    stat: () => f.stat(`${root}/data/f${n++ % 100}`),
    'open+write+close': async () => {
      const w = await f.open(`${root}/data/f${n++ % 100}`, 'r+');
      await w.write(page, 0, 4096, 0);
      await w.close();
    },
    pread4k: async () => (await opened).read(page, 0, 4096, 0),
    readdir: () => f.readdir(`${root}/data`, { withFileTypes: true }),
    'create+close+unlink': async () => {
      const p = `${root}/scratch/c${n++}`;
      await (await f.open(p, 'wx')).close();
      await f.unlink(p);
    },
    'mkdir+rmdir': async () => {
      const p = `${root}/scratch/d${n++}`;
      await f.mkdir(p);
      await f.rmdir(p);
    },
    'create+fsync': async () => {
      const w = await f.open(`${root}/scratch/s${n++ % 100}`, 'w');
      await w.write(page, 0, 4096, 0);
      await w.sync();
      await w.close();
    },
  };
}

/** The same through the libservice: its sync twins, or its async contract. */
function service(s, sync, root) {
  let n = 0;
  const h = s.openSync(`${root}/data/f0`, O_RDONLY);
  const c = sync
    ? {
        open: s.openSync.bind(s), write: s.writeSync.bind(s), close: s.closeSync.bind(s), fsync: s.fsyncSync.bind(s), stat: s.statSync.bind(s),
        read: s.readSync.bind(s), readdir: s.readdirSync.bind(s), unlink: s.unlinkSync.bind(s), mkdir: s.mkdirSync.bind(s), rmdir: s.rmdirSync.bind(s),
      }
    : s;
  const then = (v, f) => (sync ? f(v) : v.then(f));
  return {
    stat: () => c.stat(`${root}/data/f${n++ % 100}`),
    'open+write+close': () => then(c.open(`${root}/data/f${n++ % 100}`, O_RDWR), (w) => then(c.write(w, page, 0, 4096, 0), () => c.close(w))),
    pread4k: () => c.read(h, page, 0, 4096, 0),
    readdir: () => c.readdir(`${root}/data`),
    'create+close+unlink': () => {
      const p = `${root}/scratch/c${n++}`;
      return then(c.open(p, O_WRONLY | O_CREAT | O_EXCL, 0o644), (w) => then(c.close(w), () => c.unlink(p)));
    },
    'mkdir+rmdir': () => {
      const p = `${root}/scratch/d${n++}`;
      return then(c.mkdir(p), () => c.rmdir(p));
    },
    'create+fsync': () =>
      then(c.open(`${root}/scratch/s${n++ % 100}`, O_WRONLY | O_CREAT | O_TRUNC, 0o644), (w) =>
        then(c.write(w, page, 0, 4096, 0), () => then(c.fsync(w), () => c.close(w))),
      ),
  };
}

// The tree: /bench-<pid>/<peer>/{data/f0..f99 (4 KiB each), scratch/}, one
// subtree per peer: two clients on the same files would pass capabilities
// back and forth through the MDS at every turn. The client that makes the
// tree is unmounted first, for the same reason.
const root = `/bench-${process.pid}`;
const PEERS = ['libservice', 'ceph-fuse', 'kernel'];
let top = await CephLibservice.create({ conf });
await top.mkdir(root);
for (const peer of PEERS) {
  await top.mkdir(`${root}/${peer}`);
  await top.mkdir(`${root}/${peer}/data`);
  await top.mkdir(`${root}/${peer}/scratch`);
  for (let i = 0; i < 100; i++) {
    const h = await top.open(`${root}/${peer}/data/f${i}`, O_WRONLY | O_CREAT, 0o644);
    await top.write(h, page, 0, 4096, 0);
    await top.close(h);
  }
}
await top.unmount();
const lib = await CephLibservice.create({ conf, root });

// ceph-fuse on the same directory; the kernel client where there is one.
const base = fs.mkdtempSync(join(tmpdir(), 'ceph-bench-'));
const mounts = [];
function mount(name, cmd, args) {
  const mnt = join(base, name);
  fs.mkdirSync(mnt);
  try {
    execFileSync(cmd, [...args, mnt], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    mounts.push(mnt);
    return mnt;
  } catch (e) {
    console.log(`# ${name} unavailable (${(e.stderr?.toString() || e.message).trim().split('\n')[0]}): its peer is skipped`);
    return undefined;
  }
}
const fuseMnt = mount('ceph-fuse', 'ceph-fuse', ['-c', conf, '--id', 'admin', '-r', root]);
let kernelMnt;
if (fs.readFileSync('/proc/filesystems', 'utf8').includes('\tceph\n')) {
  kernelMnt = mount('kernel', 'mount', ['-t', 'ceph', `admin@.cephfs=${root}`, '-o', `conf=${conf}`]);
} else {
  console.log('# kernel client unavailable: this kernel has no ceph filesystem (no ceph module on these VMs): its peer is skipped');
}

function timeSync(op) {
  const per = [];
  const end = Date.now() + MS;
  while (Date.now() < end) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 8; i++) op();
    per.push(Number(process.hrtime.bigint() - t0) / 8 / 1000);
  }
  return per.sort((a, b) => a - b)[per.length >> 1];
}
async function timeAsync(op) {
  const per = [];
  const end = Date.now() + MS;
  while (Date.now() < end) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 8; i++) await op();
    per.push(Number(process.hrtime.bigint() - t0) / 8 / 1000);
  }
  return per.sort((a, b) => a - b)[per.length >> 1];
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function table(title, peers, time) {
  const names = Object.keys(peers);
  console.log(`\n# ${title}: median µs per operation, ${ROUNDS} interleaved rounds of ${MS} ms; node ${process.version}, libcephfs ${CephLibservice.libraryVersion()}`);
  console.log('operation'.padEnd(18) + names.map((n) => n.padStart(12)).join('') + names.slice(1).map((n) => `${n}/libservice`.padStart(22)).join(''));
  for (const op of Object.keys(peers.libservice)) {
    const by = Object.fromEntries(names.map((n) => [n, []]));
    for (const n of names) await time(peers[n][op]); // warm
    for (let r = 0; r < ROUNDS; r++)
      for (let i = 0; i < names.length; i++) {
        const n = names[(i + r) % names.length];
        by[n].push(await time(peers[n][op]));
      }
    const m = Object.fromEntries(names.map((n) => [n, median(by[n])]));
    console.log(op.padEnd(18) + names.map((n) => m[n].toFixed(1).padStart(12)).join('') + names.slice(1).map((n) => `${(m[n] / m.libservice).toFixed(2)}x`.padStart(22)).join(''));
  }
}

try {
  const sync = { libservice: service(lib, true, '/libservice') };
  const async_ = { libservice: service(lib, false, '/libservice') };
  if (fuseMnt) (sync['ceph-fuse'] = fsSync(`${fuseMnt}/ceph-fuse`)), (async_['ceph-fuse'] = fsAsync(`${fuseMnt}/ceph-fuse`));
  if (kernelMnt) (sync.kernel = fsSync(`${kernelMnt}/kernel`)), (async_.kernel = fsAsync(`${kernelMnt}/kernel`));
  await table('sync calls (libservice sync twins vs node:fs *Sync)', sync, timeSync);
  await table('async calls (libservice promises vs node:fs promises)', async_, timeAsync);
} finally {
  for (const m of mounts) {
    try {
      execFileSync('umount', [m], { stdio: 'ignore' });
    } catch {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    }
  }
  await lib.unmount();
  top = await CephLibservice.create({ conf });
  const rm = async (p) => {
    const st = await top.lstat(p);
    if ((st.mode & 0o170000) === 0o040000) {
      for (const e of await top.readdir(p)) await rm(`${p}/${e.name}`);
      await top.rmdir(p);
    } else await top.unlink(p);
  };
  await rm(root);
  await top.unmount();
  fs.rmSync(base, { recursive: true, force: true });
}
