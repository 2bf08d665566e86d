// Argument checks shared by copy and CMA. These run on every call, so they
// are plain comparisons rather than a zod schema: a 4 KiB copy takes about
// 0.3 µs, and parsing an options object with zod costs more than that.
import { isAnyArrayBuffer } from 'node:util/types';
import { SmoCopyError, SmoCopyErrorCode } from './errors.js';

/** What the copies accept: any TypedArray (Buffer included), a DataView, or an (Shared)ArrayBuffer. */
export type Bytes = ArrayBufferView | ArrayBuffer | SharedArrayBuffer;

/**
 * A Uint8Array over exactly the given bytes: the native layer takes only
 * those, so an element type it might not know (Float16Array on an older
 * runtime) can never make it see fewer or more bytes than the view has.
 */
export function toBytes(bytes: Bytes, what: string): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  try {
    if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (isAnyArrayBuffer(bytes)) return new Uint8Array(bytes);
  } catch (e) {
    throw new SmoCopyError(SmoCopyErrorCode.OutOfRange, `${what} has no bytes to use (${(e as Error).message})`);
  }
  throw new SmoCopyError(SmoCopyErrorCode.InvalidArgument, `${what} must be a Buffer, TypedArray, DataView or ArrayBuffer`);
}

/** A byte offset or length: a safe non-negative integer, else a coded error. */
export function byteCount(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new SmoCopyError(SmoCopyErrorCode.InvalidArgument, `${what} must be an integer, got ${String(value)}`);
  }
  if (value < 0) throw new SmoCopyError(SmoCopyErrorCode.OutOfRange, `${what} must not be negative, got ${value}`);
  return value;
}

/** Throws unless `[offset, offset + length)` lies inside `view`. */
export function checkRange(view: Uint8Array, offset: number, length: number, what: string): void {
  if (offset + length > view.byteLength) {
    throw new SmoCopyError(
      SmoCopyErrorCode.OutOfRange,
      `${what}: bytes ${offset}..${offset + length} are outside its ${view.byteLength} bytes`,
    );
  }
}
