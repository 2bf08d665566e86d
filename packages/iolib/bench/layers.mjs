// Where a call through the user-level path spends its time, layer by layer,
// in one process against one I/O service serving a local directory
// natively: the channel alone (a zero-byte read, which the service answers
// without a system call), a stat as raw bytes on the channel, through the
// service's client (encoding, decoding, errors) and through iolib (routing,
// Stats), and open + close and a 4 KiB pread the same ways, beside node:fs
// on the kernel path. Interleaved rounds, medians.
//
//   node packages/iolib/bench/layers.mjs      (after pnpm build)
// Env: ROUNDS (default 7), MS (per trial, default 150)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrontDriver, Opcode, decodeResult, encodeRequest } from '@polytropon/ipc';
import { IoServiceClient } from '@polytropon/ioservice';
import { createIoLibrary } from '../dist/index.js';
import { median, time } from './operations.mjs';

const ROUNDS = Number(process.env.ROUNDS ?? 7);
const MS = Number(process.env.MS ?? 150);
const base = fs.mkdtempSync(join(tmpdir(), 'iolib-layers-'));
for (const d of ['service', 'kernel']) {
  fs.mkdirSync(join(base, d, 'data'), { recursive: true });
  for (let i = 0; i < 100; i++) fs.writeFileSync(join(base, d, 'data', `f${i}`), 'x');
}
const endpoint = `iolib-layers-${process.pid}`;
const config = join(base, 'service.json');
fs.writeFileSync(config, JSON.stringify({ endpoint, instances: { local: { type: 'local', root: join(base, 'service') } } }));
const cli = fileURLToPath(new URL('../../ioservice/dist/cli.js', import.meta.url));
const service = spawn(process.execPath, [cli, '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
await once(service.stdout, 'data');

const front = FrontDriver.attach(endpoint);
const client = IoServiceClient.attach(endpoint, 'local');
const lib = createIoLibrary({ mounts: { '/mnt/pool': `${endpoint}/local` } });
const n = (i) => i % 100;
const kernel = Array.from({ length: 100 }, (_, i) => join(base, 'kernel', 'data', `f${i}`));
const inner = Array.from({ length: 100 }, (_, i) => `/data/f${i}`);
const mounted = inner.map((p) => `/mnt/pool${p}`);
const statRequests = inner.map((p) => encodeRequest(Opcode.Stat, { path: `/local${p}` }));
const openRequests = inner.map((p) => encodeRequest(Opcode.Open, { path: `/local${p}`, flags: fs.constants.O_RDWR, mode: 0 }));
const handleOf = (reply) => decodeResult(Opcode.Open, reply.data).fd;
const h = handleOf(front.callView(Opcode.Open, openRequests[0]));
const read0 = encodeRequest(Opcode.Read, { fd: h, length: 0, position: 0 });
// pread: 4 KiB at a position cycling through a 1 MiB file (in the page cache).
const PREAD = 4096;
const bigName = join('data', 'big');
for (const d of ['service', 'kernel']) fs.writeFileSync(join(base, d, bigName), Buffer.alloc(1 << 20, 7));
const at = (i) => (i % 256) * PREAD;
const kernelFd = fs.openSync(join(base, 'kernel', bigName), 'r');
const rawFd = handleOf(front.callView(Opcode.Open, encodeRequest(Opcode.Open, { path: `/local/${bigName}`, flags: fs.constants.O_RDONLY, mode: 0 })));
const preadRequests = Array.from({ length: 256 }, (_, i) => encodeRequest(Opcode.Read, { fd: rawFd, length: PREAD, position: at(i) }));
const clientFd = client.openSync(`/${bigName}`, fs.constants.O_RDONLY);
const libFd = lib.openSync(`/mnt/pool/${bigName}`, 'r');
const into = Buffer.alloc(PREAD);

const peers = {
  'channel: 0-byte read (raw)': () => front.callView(Opcode.Read, read0),
  'stat: kernel (node:fs)': (i) => fs.statSync(kernel[n(i)]),
  'stat: raw request': (i) => front.callView(Opcode.Stat, statRequests[n(i)]),
  'stat: raw + decode': (i) => decodeResult(Opcode.Stat, front.callView(Opcode.Stat, statRequests[n(i)]).data),
  'stat: service client': (i) => client.statSync(inner[n(i)]),
  'stat: iolib': (i) => lib.statSync(mounted[n(i)]),
  'open+close: kernel': (i) => fs.closeSync(fs.openSync(kernel[n(i)], 'r+')),
  'open+close: raw requests': (i) => front.callView(Opcode.Close, encodeRequest(Opcode.Close, { fd: handleOf(front.callView(Opcode.Open, openRequests[n(i)])) })),
  'open+close: service client': (i) => client.closeSync(client.openSync(inner[n(i)], fs.constants.O_RDWR)),
  'open+close: iolib': (i) => lib.closeSync(lib.openSync(mounted[n(i)], 'r+')),
  'pread 4 KiB: kernel': (i) => fs.readSync(kernelFd, into, 0, PREAD, at(i)),
  'pread 4 KiB: raw request': (i) => front.callView(Opcode.Read, preadRequests[i % 256]),
  'pread 4 KiB: service client': (i) => client.readSync(clientFd, into, 0, PREAD, at(i)),
  'pread 4 KiB: iolib': (i) => lib.readSync(libFd, into, 0, PREAD, at(i)),
};

const by = Object.fromEntries(Object.keys(peers).map((k) => [k, []]));
const names = Object.keys(peers);
for (let r = 0; r < ROUNDS; r++) for (let k = 0; k < names.length; k++) by[names[(k + r) % names.length]].push(time(peers[names[(k + r) % names.length]], MS, 32));
console.log(`# median µs per call, ${ROUNDS} interleaved rounds of ${MS} ms; node ${process.version}`);
for (const name of names) console.log(`${name.padEnd(30)}${median(by[name]).toFixed(2).padStart(8)}`);
service.kill();
fs.rmSync(base, { recursive: true, force: true });
process.exit(0);
