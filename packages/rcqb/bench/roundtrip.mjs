// Round-trip latency between two worker threads and between two processes:
// rcqb against MessagePort/IPC postMessage, a SharedArrayBuffer with
// Atomics.wait/notify, and a Unix domain socket, interleaved in one run.
//
//   pnpm --filter @polytropon/rcqb bench        (after pnpm build)
// Env: RCQB_BENCH_ROUNDS (default 3), RCQB_BENCH_RT (round trips per run, default 20000)

import { fork } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Rcqb } from '../dist/index.js';

const echo = fileURLToPath(new URL('./echo.mjs', import.meta.url));
const ROUNDS = Number(process.env.RCQB_BENCH_ROUNDS ?? 3);
const RT = Number(process.env.RCQB_BENCH_RT ?? 20000);
const BATCH = 100;

async function startEcho(where, cfg) {
  if (where === 'thread') {
    const w = new Worker(echo, { workerData: cfg });
    await once(w, 'message');
    return { port: w, stop: () => w.terminate() };
  }
  const c = fork(echo, [JSON.stringify(cfg)], { serialization: 'advanced' });
  await once(c, 'message');
  return { port: c, stop: () => c.kill() };
}

/** Per-round-trip medians over batches of BATCH round trips, in microseconds. */
function summarize(batchNs) {
  const per = batchNs.map((ns) => ns / BATCH / 1000).sort((a, b) => a - b);
  return per[Math.floor(per.length / 2)];
}

const uniq = () => `rcqb-bench-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

const peers = {
  async 'rcqb (busy: spinning)'(where) {
    return rcqbPeer(where, 20_000);
  },
  async 'rcqb (sleeping: spin 0)'(where) {
    return rcqbPeer(where, 0);
  },
  async 'SharedArrayBuffer + Atomics'(where) {
    if (where === 'process') return null; // a SharedArrayBuffer cannot cross processes
    const sab = new SharedArrayBuffer(8);
    const cells = new Int32Array(sab);
    const e = await startEcho(where, { kind: 'sab', sab });
    let seq = 0;
    const run = (n) => {
      for (let i = 0; i < n; i++) {
        seq++;
        Atomics.store(cells, 0, seq);
        Atomics.notify(cells, 0);
        while (Atomics.load(cells, 1) !== seq) Atomics.wait(cells, 1, seq - 1);
      }
    };
    return { run, stop: () => (Atomics.store(cells, 0, -1), Atomics.notify(cells, 0), e.stop()) };
  },
  async [`postMessage`](where) {
    const e = await startEcho(where, { kind: 'port' });
    const send = (v) => (where === 'thread' ? e.port.postMessage(v) : e.port.send(v));
    const run = async (n) => {
      for (let i = 0; i < n; i++) {
        const got = once(e.port, 'message');
        send(i);
        await got;
      }
    };
    return { run, stop: () => (send(-1), e.stop()) };
  },
  async 'Unix socket'(where) {
    const path = join(tmpdir(), `${uniq()}.sock`);
    const e = await startEcho(where, { kind: 'socket', path });
    const s = net.connect(path);
    s.setNoDelay(true);
    await once(s, 'connect');
    const msg = Buffer.alloc(8);
    const run = async (n) => {
      for (let i = 0; i < n; i++) {
        const got = once(s, 'data');
        s.write(msg);
        await got;
      }
    };
    return { run, stop: () => (s.end(), e.stop()) };
  },
};

async function rcqbPeer(where, spinNs) {
  const named = where === 'process';
  const ping = Rcqb.create({ capacity: 64, itemSize: 8, spinNs, ...(named ? { name: uniq() } : {}) });
  const pong = Rcqb.create({ capacity: 64, itemSize: 8, spinNs, ...(named ? { name: uniq() } : {}) });
  const e = await startEcho(where, { kind: 'rcqb', ping: ping.handle, pong: pong.handle, spinNs });
  const run = (n) => {
    for (let i = 0; i < n; i++) {
      ping.enqueueNumber(i);
      pong.dequeueNumber();
    }
  };
  return {
    run,
    stop: async () => {
      ping.enqueueNumber(-1);
      await e.stop();
      if (named) (ping.unlink(), pong.unlink());
    },
  };
}

async function measure(peer) {
  await peer.run(Math.min(2000, RT)); // warm up both sides
  const batches = [];
  for (let done = 0; done < RT; done += BATCH) {
    const t0 = process.hrtime.bigint();
    await peer.run(BATCH);
    batches.push(Number(process.hrtime.bigint() - t0));
  }
  return summarize(batches);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const names = Object.keys(peers);

console.log(`# rcqb round trip: ${ROUNDS} interleaved rounds of ${RT} round trips, median per round trip (us)`);
console.log(`# node ${process.version}, ${new Date().toISOString()}`);
for (const where of ['thread', 'process']) {
  const results = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const peer = await peers[name](where);
      if (!peer) continue;
      results[name].push(await measure(peer));
      await peer.stop();
    }
  }
  const base = median(results['rcqb (busy: spinning)']);
  const sleepBase = median(results['rcqb (sleeping: spin 0)']);
  console.log(`\n## between two ${where === 'thread' ? 'worker threads' : 'processes'}`);
  console.log('| transport | median round trip | vs rcqb busy | vs rcqb sleeping |');
  console.log('|---|---:|---:|---:|');
  for (const name of names) {
    if (results[name].length === 0) {
      console.log(`| ${name} | n/a | | |`);
      continue;
    }
    const m = median(results[name]);
    console.log(`| ${name} | ${m.toFixed(2)} us | ${(m / base).toFixed(2)}x | ${(m / sleepBase).toFixed(2)}x |`);
  }
  const peerBest = Math.min(
    ...names.filter((n) => !n.startsWith('rcqb') && results[n].length).map((n) => median(results[n])),
  );
  const goal = where === 'thread' ? 1 : 1.5;
  console.log(
    `\ngoal: busy <= ${goal} us: ${base <= goal ? 'met' : 'NOT met'} (${base.toFixed(2)} us); ` +
      `sleeping no worse than the best peer (${peerBest.toFixed(2)} us): ${sleepBase <= peerBest ? 'met' : 'NOT met'} (${sleepBase.toFixed(2)} us)`,
  );
}
