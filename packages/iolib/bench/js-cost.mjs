// The JavaScript a call costs, without the channel: the service client
// and iolib run as usual, but the driver's sync call answers from canned
// replies at once (it is replaced in this process), so what is timed is
// argument checks, routing, encoding, decoding and the records made, with
// no round trip and no service work. One CPU, so it is steadier than the
// end-to-end benches: the figure to watch when changing those layers.
//
//   node packages/iolib/bench/js-cost.mjs      (after pnpm build)
// Env: ROUNDS (default 9), MS (per trial, default 150)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrontDriver, Opcode, encodeResult } from '@polytropon/ipc';
import { IoServiceClient } from '@polytropon/ioservice';
import { createIoLibrary } from '../dist/index.js';
import { median, time } from './operations.mjs';

const ROUNDS = Number(process.env.ROUNDS ?? 9);
const MS = Number(process.env.MS ?? 150);
// A service to attach to (attaching checks it is there); no request reaches it.
const base = fs.mkdtempSync(join(tmpdir(), 'iolib-js-cost-'));
const endpoint = `iolib-js-cost-${process.pid}`;
const config = join(base, 'service.json');
fs.writeFileSync(config, JSON.stringify({ endpoint, instances: { local: { type: 'local', root: base } } }));
const cli = fileURLToPath(new URL('../../ioservice/dist/cli.js', import.meta.url));
const service = spawn(process.execPath, [cli, '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
await once(service.stdout, 'data');

// Canned replies, as views of one reply buffer (as the driver hands them out).
const st = fs.statSync(base);
const stat = Object.fromEntries(['dev', 'ino', 'mode', 'nlink', 'uid', 'gid', 'rdev', 'size', 'blksize', 'blocks', 'atimeMs', 'mtimeMs', 'ctimeMs', 'birthtimeMs'].map((k) => [k, st[k]]));
const replies = Buffer.alloc(16384);
const canned = new Map();
let at = 0;
for (const [op, result] of [[Opcode.Stat, stat], [Opcode.Open, { fd: 2 ** 40 + 1 }], [Opcode.Write, { written: 4096 }], [Opcode.Close, {}], [Opcode.Read, { data: Buffer.alloc(4096, 7) }]]) {
  const bytes = encodeResult(op, result);
  bytes.copy(replies, at);
  canned.set(op, { status: 0, data: replies.subarray(at, at + bytes.length) });
  at += bytes.length;
}
FrontDriver.prototype.callView = function (op) {
  const reply = canned.get(op);
  if (reply === undefined) throw new Error(`js-cost: no canned reply for opcode ${op}`);
  return reply;
};

const client = IoServiceClient.attach(endpoint, 'local');
const lib = createIoLibrary({ mounts: { '/mnt/pool': `${endpoint}/local` } });
const page = Buffer.alloc(4096);
const paths = Array.from({ length: 100 }, (_, i) => `/data/f${i}`);
const mounted = paths.map((p) => `/mnt/pool${p}`);
const handle = client.openSync(paths[0], fs.constants.O_RDONLY);
const fd = lib.openSync(mounted[0], 'r');
const peers = {
  'stat: service client': (i) => client.statSync(paths[i % 100]),
  'stat: iolib': (i) => lib.statSync(mounted[i % 100]),
  'open+write+close: service client': (i) => {
    const h = client.openSync(paths[i % 100], fs.constants.O_RDWR);
    client.writeSync(h, page, 0, 4096, 0);
    client.closeSync(h);
  },
  'open+write+close: iolib': (i) => {
    const fd = lib.openSync(mounted[i % 100], 'r+');
    lib.writeSync(fd, page, 0, 4096, 0);
    lib.closeSync(fd);
  },
  'pread 4 KiB: service client': (i) => client.readSync(handle, page, 0, 4096, (i & 255) * 4096),
  'pread 4 KiB: iolib': (i) => lib.readSync(fd, page, 0, 4096, (i & 255) * 4096),
};

const names = Object.keys(peers);
const by = Object.fromEntries(names.map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) for (let k = 0; k < names.length; k++) by[names[(k + r) % names.length]].push(time(peers[names[(k + r) % names.length]], MS, 64) * 1000);
console.log(`# JavaScript only (the channel answered from canned replies): median ns per call, ${ROUNDS} interleaved rounds of ${MS} ms; node ${process.version}`);
for (const name of names) console.log(`${name.padEnd(36)}${median(by[name]).toFixed(0).padStart(8)}`);
service.kill();
fs.rmSync(base, { recursive: true, force: true });
process.exit(0);
