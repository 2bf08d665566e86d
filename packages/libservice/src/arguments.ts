// Checks at the contract's boundary. Bad arguments are the caller's bug, so
// they get the same TypeError / RangeError shapes node:fs throws
// (`code: 'ERR_INVALID_ARG_TYPE'` ...), never a POSIX error.
import type { z } from 'zod';

function argumentError(kind: typeof TypeError | typeof RangeError, code: string, message: string): Error {
  const e = new kind(message) as Error & { code: string };
  e.code = code;
  return e;
}

/** Validates an options object with its zod schema; the first issue becomes the message. */
export function parseOptions<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue && issue.path.length > 0 ? `.${issue.path.join('.')}` : '';
  throw argumentError(TypeError, 'ERR_INVALID_ARG_VALUE', `${what}${where}: ${issue?.message ?? 'invalid'}`);
}

/**
 * Splits a service path into its components, without '' and '.'; '..' is
 * kept, for the resolver to apply after symlinks as the kernel does.
 */
export function splitPath(path: unknown, name = 'path'): string[] {
  return checkPath(path, name)
    .split('/')
    .filter((c) => c !== '' && c !== '.');
}

/**
 * Checks a service path as {@link splitPath} does (a string, absolute, no
 * NUL) without splitting it, for code that passes it on whole.
 */
export function checkPath(path: unknown, name = 'path'): string {
  if (typeof path !== 'string') throw argumentError(TypeError, 'ERR_INVALID_ARG_TYPE', `${name} must be a string`);
  if (!path.startsWith('/')) throw argumentError(TypeError, 'ERR_INVALID_ARG_VALUE', `${name} must be absolute within the service, got '${path}'`);
  if (path.includes('\0')) throw argumentError(TypeError, 'ERR_INVALID_ARG_VALUE', `${name} must not contain null bytes`);
  return path;
}

/**
 * How a path ends, for the rules the kernel applies to its last component:
 * '/' (a trailing slash: it must be a directory), '.' or '..' (it names a
 * directory through itself or its child: rmdir and rename refuse), or ''.
 */
export function pathTail(path: string): '' | '/' | '.' | '..' {
  if (path.length > 1 && path.endsWith('/')) return '/';
  if (path.endsWith('/.')) return '.';
  if (path.endsWith('/..')) return '..';
  return '';
}

/** Checks a handle is an integer (whether it is open is the service's EBADF). */
export function checkHandle(handle: unknown): number {
  if (!Number.isSafeInteger(handle)) throw argumentError(TypeError, 'ERR_INVALID_ARG_TYPE', 'handle must be an integer');
  return handle as number;
}

/** Checks `offset..offset+length` lies in `buffer` and `position` is null or a non-negative integer. */
export function checkIo(buffer: unknown, offset: number, length: number, position: number | null): void {
  if (!(buffer instanceof Uint8Array)) throw argumentError(TypeError, 'ERR_INVALID_ARG_TYPE', 'buffer must be a Uint8Array');
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > buffer.byteLength)
    throw argumentError(RangeError, 'ERR_OUT_OF_RANGE', `offset must be within the buffer (0..${buffer.byteLength}), got ${offset}`);
  if (!Number.isSafeInteger(length) || length < 0 || offset + length > buffer.byteLength)
    throw argumentError(RangeError, 'ERR_OUT_OF_RANGE', `length must fit the buffer from offset (0..${buffer.byteLength - offset}), got ${length}`);
  if (position !== null && (!Number.isSafeInteger(position) || position < 0))
    throw argumentError(RangeError, 'ERR_OUT_OF_RANGE', `position must be null or a non-negative integer, got ${position}`);
}

/** Checks a length or mode is a non-negative safe integer. */
export function checkNumber(value: unknown, name: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0)
    throw argumentError(RangeError, 'ERR_OUT_OF_RANGE', `${name} must be a non-negative integer, got ${String(value)}`);
  return value as number;
}
