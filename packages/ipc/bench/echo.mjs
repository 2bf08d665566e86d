// Echo round trips between two processes: @polytropon/ipc (sync and async)
// against a Unix domain socket and the process IPC channel (process.send),
// and MessagePort between two worker threads; then sync throughput with 1,
// 4 and 16 client threads. Interleaved rounds, medians, ratios.
//
//   pnpm --filter @polytropon/ipc bench        (after pnpm build)
// Env: IPC_BENCH_ROUNDS (default 5), IPC_BENCH_MS (per trial, default 300)

import { fork } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FrontDriver } from '../dist/index.js';

const ROUNDS = Number(process.env.IPC_BENCH_ROUNDS ?? 5);
const MS = Number(process.env.IPC_BENCH_MS ?? 300);
const peerPath = fileURLToPath(new URL('./echo-peer.mjs', import.meta.url));
const endpoint = `ipc-bench-${process.pid}`;
const socketPath = join(tmpdir(), `ipc-bench-${process.pid}.sock`);

const peer = fork(peerPath, [endpoint, socketPath], { serialization: 'advanced' });
await once(peer, 'message');
const front = FrontDriver.attach(endpoint, { spinNs: 200_000 });
const sock = net.connect(socketPath);
await once(sock, 'connect');
sock.setNoDelay(true);
const port = new Worker(peerPath, { workerData: {} });
await once(port, 'message');

/** Median microseconds per round trip over batches of `batch`, for MS. */
async function time(one, batch) {
  const per = [];
  const end = Date.now() + MS;
  while (Date.now() < end) {
    const t0 = process.hrtime.bigint();
    // A sync call is timed as a program makes it, without an await (a
    // microtask turn) after each.
    for (let i = 0; i < batch; i++) {
      const r = one();
      if (r instanceof Promise) await r;
    }
    per.push(Number(process.hrtime.bigint() - t0) / batch / 1000);
  }
  return per.sort((a, b) => a - b)[Math.floor(per.length / 2)];
}

function socketEcho(payload) {
  return new Promise((resolve) => {
    // The reply is assembled into one Buffer, as the channel's call returns
    // it and as a client that uses the reply must.
    let got = 0;
    const chunks = [];
    const want = 4 + payload.length;
    const onData = (d) => {
      got += d.length;
      chunks.push(d);
      if (got >= want) {
        sock.off('data', onData);
        resolve((chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).subarray(4));
      }
    };
    sock.on('data', onData);
    const head = Buffer.alloc(4);
    head.writeUInt32LE(payload.length);
    sock.write(head);
    if (payload.length) sock.write(payload);
  });
}

const messageEcho = (target, payload) =>
  new Promise((resolve) => {
    target.once('message', resolve);
    (target.send ?? target.postMessage).call(target, payload);
  });

const peers = {
  'ipc sync': (p) => front.call(1, p),
  // The reply as a view of the driver's buffer (valid until its next call).
  'ipc sync view': (p) => front.callView(1, p),
  'ipc async': (p) => front.callAsync(1, p),
  'Unix socket': (p) => socketEcho(p),
  'process.send': (p) => messageEcho(peer, p),
  'MessagePort (threads)': (p) => messageEcho(port, p),
};
const names = Object.keys(peers);

console.log(`# echo round trips, median us; ${ROUNDS} interleaved rounds of ${MS} ms; Node ${process.version}; ${new Date().toISOString()}`);
for (const [label, size] of [['null', 0], ['4 KiB', 4096], ['1 MiB', 1 << 20]]) {
  const payload = Buffer.alloc(size, 7);
  const batch = size >= 1 << 20 ? 4 : 50;
  const res = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [...names].reverse() : names;
    for (const n of order) res[n].push(await time(() => peers[n](payload), batch));
  }
  console.log(`\n## ${label}`);
  console.log('| transport | median round trip | vs ipc sync |\n|---|---:|---:|');
  const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const base = med(res['ipc sync']);
  for (const n of names) {
    const m = med(res[n]);
    console.log(`| ${n} | ${m.toFixed(2)} us | ${(m / base).toFixed(2)}x |`);
  }
  const ratioTo = (n) => med(res[n].map((v, i) => v / res['ipc sync'][i]));
  if (size === 0) console.log(`goal: sync null <= 2 us: ${base <= 2 ? 'met' : 'NOT met'} (${base.toFixed(2)} us); async <= 10 us: ${med(res['ipc async']) <= 10 ? 'met' : 'NOT met'} (${med(res['ipc async']).toFixed(2)} us)`);
  if (size === 1 << 20) console.log(`goal: 1 MiB echo at least 2x a socket: ${ratioTo('Unix socket') >= 2 ? 'met' : 'NOT met'} (${ratioTo('Unix socket').toFixed(2)}x)`);
}

// Throughput: N worker threads, each its own FrontDriver, sync null calls.
console.log('\n## throughput, sync null calls from N client threads');
for (const n of [1, 4, 16]) {
  const workers = Array.from({ length: n }, () =>
    new Worker(
      `const { FrontDriver } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
       const { parentPort, workerData } = await import('node:worker_threads');
       const f = FrontDriver.attach(workerData.endpoint, { spinNs: 200000 });
       parentPort.postMessage('ready');
       await new Promise((r) => parentPort.once('message', r));
       let calls = 0; const end = Date.now() + workerData.ms;
       while (Date.now() < end) { for (let i = 0; i < 100; i++) f.call(1); calls += 100; }
       f.detach();
       parentPort.postMessage(calls);`,
      { eval: true, workerData: { endpoint, ms: MS * 3 } },
    ),
  );
  await Promise.all(workers.map((w) => once(w, 'message')));
  workers.forEach((w) => w.postMessage('go'));
  const counts = await Promise.all(workers.map(async (w) => (await once(w, 'message'))[0]));
  const total = counts.reduce((a, b) => a + b, 0);
  console.log(`| ${n} threads | ${((total / (MS * 3)) * 1000 / 1000).toFixed(0)} k calls/s |`);
  await Promise.all(workers.map((w) => w.terminate()));
}

front.detach();
sock.destroy();
await port.terminate();
peer.kill();
