// Errors cross the channel as `-errno` only; each side names them itself.
import { constants } from 'node:os';
import type { PosixCode } from '@polytropon/libservice';

const CODES = new Map<number, PosixCode>(Object.entries(constants.errno).map(([code, n]) => [n, code as PosixCode]));

/** The POSIX code of an errno (positive), EIO for one this platform does not name. */
export function codeOf(errno: number): PosixCode {
  return CODES.get(errno) ?? 'EIO';
}

export const errno = (code: PosixCode): number => constants.errno[code];
