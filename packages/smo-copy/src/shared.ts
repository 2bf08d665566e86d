import { constants } from 'node:buffer';
import { fromNative, SmoCopyError, SmoCopyErrorCode } from './errors.js';
import { native } from './native.js';

function checkName(name: unknown): string {
  if (typeof name !== 'string') throw new SmoCopyError(SmoCopyErrorCode.InvalidArgument, 'name must be a string');
  return name;
}

/**
 * Creates a named shared-memory buffer (`/dev/shm/<name>`, mode 0600, fails
 * with `ERR_SMO_EXISTS` if taken) of `size` zeroed bytes, mapped into this
 * process as a Buffer. Other processes and worker threads map the same bytes
 * with {@link openSharedBuffer}; the mapping goes when the Buffer is
 * collected, the name when {@link unlinkSharedBuffer} removes it.
 *
 * Posting such a Buffer to a worker copies it: open it by name there. A
 * peer that shrinks the segment (ftruncate) makes access past its new end
 * fault (SIGBUS), as with any shared mapping.
 */
export function createSharedBuffer(name: string, size: number): Buffer {
  checkName(name);
  if (!Number.isSafeInteger(size) || size <= 0 || size > constants.MAX_LENGTH) {
    throw new SmoCopyError(
      SmoCopyErrorCode.InvalidArgument,
      `size must be a positive integer up to ${constants.MAX_LENGTH} (the largest Buffer), got ${String(size)}`,
    );
  }
  try {
    return native.createShared(name, size);
  } catch (e) {
    throw fromNative(e);
  }
}

/** Maps an existing shared buffer, whole (`ERR_SMO_NOT_FOUND` if none has that name). */
export function openSharedBuffer(name: string): Buffer {
  checkName(name);
  try {
    return native.openShared(name);
  } catch (e) {
    throw fromNative(e);
  }
}

/** Removes a shared buffer's name; existing mappings stay valid. */
export function unlinkSharedBuffer(name: string): void {
  checkName(name);
  try {
    native.unlinkShared(name);
  } catch (e) {
    throw fromNative(e);
  }
}
