// Errors of the libservice contract: POSIX codes shaped exactly like the ones
// node:fs throws (`code`, negative `errno`, `syscall`, `path`, `dest`, and a
// message `ENOENT: no such file or directory, open '/a'`), so code written
// for node:fs handles them unchanged whichever libservice served the call.
import { getSystemErrorMap } from 'node:util';
import { constants } from 'node:os';

/** The POSIX codes a libservice may answer with (Linux's names). */
export type PosixCode = keyof typeof constants.errno;

const DESCRIPTIONS = getSystemErrorMap();
const CODES = new Map<number, PosixCode>(Object.entries(constants.errno).map(([code, n]) => [n, code as PosixCode]));

/** The POSIX code of an errno (positive), EIO for one this platform does not name. */
export function codeOf(errno: number): PosixCode {
  return CODES.get(errno) ?? 'EIO';
}

/** An error of a filesystem operation, indistinguishable in shape from node:fs's own. */
export class FsError extends Error {
  /**
   * Whether new FsErrors capture a stack trace (default true, as node:fs's
   * errors do). Capturing one costs about 3 µs here, more than most system
   * calls: a process that only turns these errors into `-errno` replies (a
   * standalone I/O service) turns it off.
   */
  static stackTraces = true;

  readonly code: string;
  /** Negative, as in node:fs (`-2` for ENOENT). */
  readonly errno: number;
  readonly syscall: string;
  readonly path?: string;
  readonly dest?: string;

  constructor(code: PosixCode, syscall: string, path?: string, dest?: string) {
    const errno = -(constants.errno[code] ?? 0);
    const description = DESCRIPTIONS.get(errno)?.[1] ?? code.toLowerCase();
    let message = `${code}: ${description}, ${syscall}`;
    if (path !== undefined) message += ` '${path}'`;
    if (dest !== undefined) message += ` -> '${dest}'`;
    const limit = Error.stackTraceLimit;
    if (!FsError.stackTraces) Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'Error';
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
    if (path !== undefined) this.path = path;
    if (dest !== undefined) this.dest = dest;
  }
}

/** True when `e` carries the POSIX `code` (an FsError, or an error node:fs threw). */
export function hasCode(e: unknown, code: PosixCode): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

/**
 * Re-shapes an error node:fs threw for a host path into the same error for
 * the libservice's own path, so a service never leaks where its root lives.
 * Anything that is not a system error is returned unchanged.
 */
export function asServiceError(e: unknown, syscall: string, path?: string, dest?: string): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !Object.hasOwn(constants.errno, code)) return e;
  return new FsError(code as PosixCode, syscall, path, dest);
}
