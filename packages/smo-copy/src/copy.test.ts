import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copy, supportedUnits, bestUnit, AUTO_STREAMING_MIN, SmoCopyError, type CopyOptions } from './index.js';
import { codeOf as codeOfType } from '../../../tooling/test-helpers.js';

/** Position-dependent bytes, so a shifted or repeated chunk is caught. */
function pattern(len: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  let x = seed | 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const PATHS: CopyOptions[] = [
  { method: 'auto' },
  { method: 'smo' },
  { method: 'smc' },
  ...supportedUnits().map((unit) => ({ unit })),
];

const GUARD = 128;
/** Copies with `path` into a canary-filled buffer; checks bytes and canaries against Buffer.copy. */
function checkPath(path: CopyOptions, len: number, srcOff: number, dstOff: number, seed: number): void {
  const src = pattern(srcOff + len, seed);
  const dst = Buffer.alloc(GUARD + dstOff + len + GUARD, 0xa5);
  const want = Buffer.from(dst);
  src.copy(want, GUARD + dstOff, srcOff);
  const n = copy(dst, src, { ...path, srcOffset: srcOff, dstOffset: GUARD + dstOff, length: len });
  expect(n).toBe(len);
  if (!dst.equals(want)) {
    const at = dst.findIndex((b, i) => b !== want[i]);
    throw new Error(`${JSON.stringify(path)} len ${len} srcOff ${srcOff} dstOff ${dstOff}: first wrong byte at ${at}`);
  }
}

const codeOf = (f: () => unknown) => codeOfType(SmoCopyError, f);

describe('copy', () => {
  it('knows this CPU: portable always, the best unit last', () => {
    const units = supportedUnits();
    expect(units[0]).toBe('portable');
    expect(units.at(-1)).toBe(bestUnit());
    expect(AUTO_STREAMING_MIN).toBeGreaterThan(0);
  });

  it('is byte-exact on every path for every length 0..4096, at rotating alignments', () => {
    for (const path of PATHS) {
      for (let len = 0; len <= 4096; len++) checkPath(path, len, len % 67, (len * 7) % 64, len);
    }
  });

  it('is byte-exact on every path for random lengths and alignments (fast-check, Buffer.copy as oracle)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PATHS),
        fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 4096, max: 3 << 20 })),
        fc.integer({ min: 0, max: 4095 }),
        fc.integer({ min: 0, max: 4095 }),
        fc.integer(),
        (path, len, srcOff, dstOff, seed) => checkPath(path, len, srcOff, dstOff, seed),
      ),
      { numRuns: 150 },
    );
  });

  it('copies between typed arrays of any kind, DataViews and ArrayBuffers, honouring their own offsets', () => {
    const backing = new ArrayBuffer(64);
    const f64 = new Float64Array(backing, 8, 4); // bytes 8..40
    f64.set([1.5, -2, Math.PI, 1e300]);
    const out = new Float64Array(4);
    expect(copy(out, f64)).toBe(32);
    expect([...out]).toEqual([1.5, -2, Math.PI, 1e300]);
    const dv = new DataView(new ArrayBuffer(40), 4, 32);
    copy(dv, f64, { method: 'smo' });
    expect(dv.getFloat64(0, true)).toBe(1.5);
    const ab = new ArrayBuffer(32);
    copy(ab, out);
    expect(new Float64Array(ab)[2]).toBe(Math.PI);
    // Wide elements and DataViews on the native (streaming) path too.
    const big = new BigInt64Array(8192).map((_, i) => BigInt(i) * 0x0102030405060708n);
    const bigOut = new BigInt64Array(8192 + 3);
    expect(copy(bigOut, big, { method: 'smo', dstOffset: 24 })).toBe(65536);
    expect(bigOut.subarray(3)).toEqual(big);
    const dvBig = new DataView(new ArrayBuffer(70_000), 100, 65536);
    copy(dvBig, big, { method: 'smo' });
    expect(dvBig.getBigInt64(8 * 4095, true)).toBe(big[4095]);
    const sab = new SharedArrayBuffer(16);
    copy(sab, new Uint8Array(16).fill(3));
    expect(new Uint8Array(sab)[15]).toBe(3);
  });

  it('allows disjoint ranges of one buffer and refuses overlapping ones, through any views', () => {
    const b = pattern(100_000, 1);
    const want = Buffer.from(b);
    want.copy(want, 50_000, 0, 50_000);
    expect(copy(b, b, { srcOffset: 0, dstOffset: 50_000, length: 50_000, method: 'smo' })).toBe(50_000);
    expect(b.equals(want)).toBe(true);
    expect(codeOf(() => copy(b, b, { srcOffset: 0, dstOffset: 49_999, length: 50_000 }))).toBe('ERR_SMO_OVERLAP');
    // Two different views of the same memory still overlap.
    const u32 = new Uint32Array(b.buffer, b.byteOffset, 1000);
    expect(codeOf(() => copy(u32, b.subarray(3000, 7000)))).toBe('ERR_SMO_OVERLAP');
    expect(codeOf(() => copy(b, b))).toBe('ERR_SMO_OVERLAP');
    // Small and plain copies take the JS path; it refuses overlap the same way.
    for (const method of ['auto', 'smc', 'smo'] as const) {
      expect(codeOf(() => copy(b, b, { srcOffset: 0, dstOffset: 10, length: 20, method }))).toBe('ERR_SMO_OVERLAP');
      expect(codeOf(() => copy(new Uint16Array(b.buffer, b.byteOffset, 64), b.subarray(50, 150), { method }))).toBe('ERR_SMO_OVERLAP');
    }
    // Zero bytes overlap nothing.
    expect(copy(b, b, { length: 0 })).toBe(0);
  });

  it('refuses ranges outside either buffer before writing a byte', () => {
    const src = Buffer.alloc(100, 1);
    const dst = Buffer.alloc(100, 0);
    const cases: CopyOptions[] = [
      { dstOffset: 1 },
      { srcOffset: 101 },
      { srcOffset: 50, length: 51 },
      { length: 2 ** 40 },
      { dstOffset: Number.MAX_SAFE_INTEGER, length: 1 },
    ];
    for (const c of cases) expect(codeOf(() => copy(dst, src, c)), JSON.stringify(c)).toBe('ERR_SMO_OUT_OF_RANGE');
    expect(codeOf(() => copy(Buffer.alloc(10), src))).toBe('ERR_SMO_OUT_OF_RANGE');
    expect(codeOf(() => copy(dst, src, { length: -1 }))).toBe('ERR_SMO_OUT_OF_RANGE');
    expect(dst.every((x) => x === 0)).toBe(true);
  });

  it('refuses arguments of the wrong type with ERR_SMO_INVALID_ARGUMENT', () => {
    const b = Buffer.alloc(8);
    const bad: [unknown, unknown, unknown][] = [
      ['not a buffer', b, undefined],
      [b, [1, 2, 3], undefined],
      [b, Buffer.alloc(8), 'fast'],
      [b, Buffer.alloc(8), { method: 'fast' }],
      [b, Buffer.alloc(8), { method: 'toString' }],
      [b, Buffer.alloc(8), { unit: 'avx1024' }],
      [b, Buffer.alloc(8), { unit: 'sse2', method: 'smc' }],
      [b, Buffer.alloc(8), { length: 1.5 }],
      [b, Buffer.alloc(8), { srcOffset: Number.NaN }],
      [b, Buffer.alloc(8), { dstOffset: '1' }],
    ];
    for (const [d, s, o] of bad) {
      expect(codeOf(() => copy(d as Buffer, s as Buffer, o as CopyOptions)), JSON.stringify(o)).toBe('ERR_SMO_INVALID_ARGUMENT');
    }
  });
});
