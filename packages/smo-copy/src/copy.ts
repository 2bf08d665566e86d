import { fromNative, SmoCopyError, SmoCopyErrorCode } from './errors.js';
import { native } from './native.js';
import { byteCount, checkRange, toBytes, type Bytes } from './views.js';

/** How to copy: `smo` streams, `smc` is a plain memcpy, `auto` picks by size. */
export type CopyMethod = 'auto' | 'smo' | 'smc';

/** The vector unit of an SMO kernel; `portable` is a plain copy. */
export type VectorUnit = 'portable' | 'sse2' | 'avx2' | 'avx512';

/** Options of {@link copy}. All offsets and lengths are in bytes. */
export interface CopyOptions {
  /** Default `auto`: SMO from {@link AUTO_STREAMING_MIN} bytes up, memcpy below. */
  method?: CopyMethod;
  /** Force SMO on one vector unit (implies `method: 'smo'`); see {@link supportedUnits}. */
  unit?: VectorUnit;
  /** Where to start writing in `dst`. Default 0. */
  dstOffset?: number;
  /** Where to start reading in `src`. Default 0. */
  srcOffset?: number;
  /** How many bytes. Default: the rest of `src` after `srcOffset`, which must fit in `dst`. */
  length?: number;
}

const METHOD_CODES: Record<CopyMethod, number> = { auto: 0, smo: 1, smc: 2 };
/** Forced units are sent as 16 + their index in the native unit list. */
const FORCED = 16;
const ALL_UNITS = native.allUnits() as VectorUnit[];

/** The smallest copy that `auto` does with streaming stores (measured; see BENCHMARKS.md). */
export const AUTO_STREAMING_MIN: number = native.autoStreamingMin();

/** The SMO vector units this CPU supports, narrowest first. */
export function supportedUnits(): VectorUnit[] {
  return native.supportedUnits() as VectorUnit[];
}

/** The unit `smo` and `auto` use: the widest this CPU supports. */
export function bestUnit(): VectorUnit {
  return native.bestUnit() as VectorUnit;
}

function methodCode(options: CopyOptions): number {
  const { method, unit } = options;
  if (unit !== undefined) {
    const index = ALL_UNITS.indexOf(unit);
    if (index < 0) throw new SmoCopyError(SmoCopyErrorCode.InvalidArgument, `unknown unit ${String(unit)}; known: ${ALL_UNITS.join(', ')}`);
    if (method !== undefined && method !== 'smo') {
      throw new SmoCopyError(SmoCopyErrorCode.InvalidArgument, `unit ${unit} forces SMO; it cannot go with method ${method}`);
    }
    return FORCED + index;
  }
  if (method === undefined) return METHOD_CODES.auto;
  if (!Object.hasOwn(METHOD_CODES, method)) {
    throw new SmoCopyError(SmoCopyErrorCode.InvalidArgument, `unknown method ${String(method)}; use auto, smo or smc`);
  }
  return METHOD_CODES[method];
}

const bufferCopy = Buffer.prototype.copy;

function plainCopy(db: Uint8Array, dstOffset: number, sb: Uint8Array, srcOffset: number, length: number): void {
  // Same memory, overlapping bytes: refused like the native path does (a
  // copy, not a move). This sees views of one ArrayBuffer; two objects over
  // one memory (a SharedArrayBuffer received back from a worker, a shared
  // buffer opened twice) are not recognised, and Buffer.copy then moves the
  // bytes as memmove would, which is still memory-safe.
  if (db.buffer === sb.buffer && length > 0) {
    const a = db.byteOffset + dstOffset;
    const b = sb.byteOffset + srcOffset;
    if (a < b + length && b < a + length) {
      throw new SmoCopyError(SmoCopyErrorCode.Overlap, 'source and destination ranges overlap (use Buffer.copy or copyWithin for moves inside one buffer)');
    }
  }
  bufferCopy.call(sb, db, dstOffset, srcOffset, srcOffset + length);
}

/**
 * Copies bytes from `src` into `dst`, synchronously, and returns how many.
 *
 * Ranges outside either buffer (`ERR_SMO_OUT_OF_RANGE`) and overlapping
 * ranges (`ERR_SMO_OVERLAP`) are refused before a byte moves.
 *
 * @example
 * const shm = createSharedBuffer('demo', 1 << 20);
 * copy(shm, payload, { method: 'smo' }); // stream into shared memory
 */
export function copy(dst: Bytes, src: Bytes, options?: CopyOptions): number {
  const d = toBytes(dst, 'dst');
  const s = toBytes(src, 'src');
  let dstOffset = 0;
  let srcOffset = 0;
  let length: number;
  let code = METHOD_CODES.auto;
  if (options === undefined) {
    length = s.byteLength;
  } else {
    if (typeof options !== 'object' || options === null) {
      throw new SmoCopyError(SmoCopyErrorCode.InvalidArgument, 'options must be an object');
    }
    code = methodCode(options);
    if (options.dstOffset !== undefined) dstOffset = byteCount(options.dstOffset, 'dstOffset');
    if (options.srcOffset !== undefined) srcOffset = byteCount(options.srcOffset, 'srcOffset');
    length = options.length === undefined ? Math.max(0, s.byteLength - srcOffset) : byteCount(options.length, 'length');
  }
  checkRange(s, srcOffset, length, 'src');
  checkRange(d, dstOffset, length, 'dst');
  if (code === METHOD_CODES.smc || (code === METHOD_CODES.auto && length < AUTO_STREAMING_MIN)) {
    // A plain copy needs no native call: Node's own Buffer copy is a memcpy
    // reached in ~20 ns, where crossing into the addon costs ~150-200 ns
    // (measured in bench/copy.mjs), more than a 4 KiB copy itself.
    plainCopy(d, dstOffset, s, srcOffset, length);
    return length;
  }
  try {
    native.copy(d, dstOffset, s, srcOffset, length, code);
  } catch (e) {
    throw fromNative(e);
  }
  return length;
}
