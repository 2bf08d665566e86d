import { fromNative, SmoCopyError, SmoCopyErrorCode } from './errors.js';
import { native } from './native.js';
import { byteCount, checkRange, toBytes, type Bytes } from './views.js';

/** Where in the local buffer a CMA transfer starts, and how many bytes it moves. */
export interface CmaOptions {
  /** Offset in the local buffer. Default 0. */
  offset?: number;
  /** Bytes to move. Default: the rest of the local buffer after `offset`. */
  length?: number;
}

function peer(pid: unknown, remoteAddress: unknown): void {
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || pid > 0x7fffffff) {
    throw new SmoCopyError(SmoCopyErrorCode.InvalidArgument, `pid must be a positive integer, got ${String(pid)}`);
  }
  if (typeof remoteAddress !== 'bigint' || remoteAddress < 0n) {
    throw new SmoCopyError(SmoCopyErrorCode.InvalidArgument, 'remoteAddress must be a non-negative bigint (see addressOf)');
  }
}

/**
 * Address of a view's first byte in this process, to hand to a peer that
 * will {@link cmaRead} or {@link cmaWrite} it. Valid while the view's
 * memory is alive and not moved (keep a reference to it).
 */
export function addressOf(view: ArrayBufferView): bigint {
  return native.addressOf(toBytes(view, 'view'));
}

type NativeTransfer = (pid: number, remoteAddress: bigint, view: Uint8Array, offset: number, length: number) => void;

/** Checks both ends, then moves the bytes with `call`; returns the count. */
function transfer(call: NativeTransfer, pid: number, remoteAddress: bigint, bytes: Bytes, options: CmaOptions | undefined, what: string): number {
  peer(pid, remoteAddress);
  const view = toBytes(bytes, what);
  const offset = options?.offset === undefined ? 0 : byteCount(options.offset, 'offset');
  const length = options?.length === undefined ? Math.max(0, view.byteLength - offset) : byteCount(options.length, 'length');
  checkRange(view, offset, length, what);
  try {
    call(pid, remoteAddress, view, offset, length);
  } catch (e) {
    throw fromNative(e);
  }
  return length;
}

/**
 * Cross-memory attach: reads bytes at `remoteAddress` in process `pid` into
 * `dst`, one copy, no shared memory (`process_vm_readv`). Returns the count.
 * Needs ptrace access to the peer: refused with `ERR_SMO_CMA_PERMISSION`.
 */
export function cmaRead(pid: number, remoteAddress: bigint, dst: Bytes, options?: CmaOptions): number {
  return transfer(native.cmaRead, pid, remoteAddress, dst, options, 'dst');
}

/** Cross-memory attach: writes `src` at `remoteAddress` in process `pid` (`process_vm_writev`). */
export function cmaWrite(pid: number, remoteAddress: bigint, src: Bytes, options?: CmaOptions): number {
  return transfer(native.cmaWrite, pid, remoteAddress, src, options, 'src');
}
