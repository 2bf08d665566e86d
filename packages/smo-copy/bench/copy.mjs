// What a JS caller pays per copy: @polytropon/smo-copy (auto, smo, smc)
// against Buffer.copy and TypedArray.set, interleaved in one process, one
// thread. Two cases per size:
// - into shm: each call copies new data (walking a 256 MiB source) into a
//   64 MiB ring in a shared buffer, as the I/O path's producer does;
// - hot: the same source and destination every call (cache-resident below
//   a few MiB), where streaming stores are expected to lose.
// The two-process pipeline (the figure the design targets) is the Rust
// bench: cargo bench -p polytropon-smo-copy --bench pipeline.
//
//   pnpm --filter @polytropon/smo-copy bench        (after pnpm build)
// Env: SMO_BENCH_ROUNDS (default 5), SMO_BENCH_MB (bytes per trial, default 256)

import { copy, createSharedBuffer, unlinkSharedBuffer, bestUnit, AUTO_STREAMING_MIN } from '../dist/index.js';

const ROUNDS = Number(process.env.SMO_BENCH_ROUNDS ?? 5);
const MB = Number(process.env.SMO_BENCH_MB ?? 256);
const SIZES = [64, 4 << 10, 64 << 10, 1 << 20, 16 << 20];
const SOURCE = 256 << 20;
const RING = 64 << 20;

const peers = {
  'smo-copy auto': (d, s, doff, soff, n) => copy(d, s, { dstOffset: doff, srcOffset: soff, length: n }),
  'smo-copy smo': (d, s, doff, soff, n) => copy(d, s, { method: 'smo', dstOffset: doff, srcOffset: soff, length: n }),
  'smo-copy smc': (d, s, doff, soff, n) => copy(d, s, { method: 'smc', dstOffset: doff, srcOffset: soff, length: n }),
  'Buffer.copy': (d, s, doff, soff, n) => s.copy(d, doff, soff, soff + n),
  'TypedArray.set': (d, s, doff, soff, n) => d.set(s.subarray(soff, soff + n), doff),
};
const names = Object.keys(peers);
const BASE = 'Buffer.copy';

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const source = Buffer.alloc(SOURCE, 0x5a);
const shmName = `smo-bench-${process.pid}`;
const ring = createSharedBuffer(shmName, RING);
ring.fill(1);
unlinkSharedBuffer(shmName);

/** GB/s of one peer over `calls` copies of `size` bytes. */
function trial(fn, size, calls, cold) {
  const src = cold ? source : source.subarray(0, size);
  const dst = cold ? ring : ring.subarray(0, size);
  const srcChunks = Math.floor(src.length / size);
  const dstChunks = Math.floor(dst.length / size);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) fn(dst, src, (i % dstChunks) * size, (i % srcChunks) * size, size);
  return (size * calls) / Number(process.hrtime.bigint() - t0);
}

console.log(`# smo-copy from JS, one thread: GB/s medians of ${ROUNDS} interleaved rounds; SMO on ${bestUnit()}, auto streams from ${AUTO_STREAMING_MIN >> 10} KiB; Node ${process.version}`);
for (const [label, cold] of [['into shm: new data every call, into a 64 MiB shared ring', true], ['hot: same source and destination', false]]) {
  console.log(`\n## ${label}`);
  console.log(['size'.padStart(9), ...names.map((n) => n.padStart(15)), ...names.filter((n) => n !== BASE).map((n) => `${n.replace('smo-copy ', '')}/${BASE}`.padStart(22))].join(' '));
  for (const size of SIZES) {
    const calls = Math.max(16, Math.floor((MB << 20) / Math.max(size, 4096)));
    for (const n of names) trial(peers[n], size, Math.min(calls, 1000), cold); // warm up the JIT
    const results = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < names.length; k++) {
        const n = names[(r + k) % names.length];
        results[n].push(trial(peers[n], size, calls, cold));
      }
    }
    const m = Object.fromEntries(names.map((n) => [n, median(results[n])]));
    const sizeLabel = size >= 1 << 20 ? `${size >> 20} MiB` : size >= 1024 ? `${size >> 10} KiB` : `${size} B`;
    console.log(
      [sizeLabel.padStart(9), ...names.map((n) => m[n].toFixed(2).padStart(15)), ...names.filter((n) => n !== BASE).map((n) => (m[n] / m[BASE]).toFixed(2).padStart(22))].join(' '),
    );
  }
}
