// Open flags: node:fs's string forms and the Linux numbers the contract uses.
import { constants } from 'node:fs';

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_SYNC } = constants;

const BY_NAME: Record<string, number> = {
  r: O_RDONLY,
  rs: O_RDONLY | O_SYNC,
  sr: O_RDONLY | O_SYNC,
  'r+': O_RDWR,
  'rs+': O_RDWR | O_SYNC,
  'sr+': O_RDWR | O_SYNC,
  w: O_TRUNC | O_CREAT | O_WRONLY,
  wx: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
  xw: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
  'w+': O_TRUNC | O_CREAT | O_RDWR,
  'wx+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
  'xw+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
  a: O_APPEND | O_CREAT | O_WRONLY,
  ax: O_APPEND | O_CREAT | O_WRONLY | O_EXCL,
  xa: O_APPEND | O_CREAT | O_WRONLY | O_EXCL,
  as: O_APPEND | O_CREAT | O_WRONLY | O_SYNC,
  sa: O_APPEND | O_CREAT | O_WRONLY | O_SYNC,
  'a+': O_APPEND | O_CREAT | O_RDWR,
  'ax+': O_APPEND | O_CREAT | O_RDWR | O_EXCL,
  'xa+': O_APPEND | O_CREAT | O_RDWR | O_EXCL,
  'as+': O_APPEND | O_CREAT | O_RDWR | O_SYNC,
  'sa+': O_APPEND | O_CREAT | O_RDWR | O_SYNC,
};

/** Turns node:fs's flags ('r', 'a+', 'wx'... or a number) into the number the contract takes. */
export function parseOpenFlags(flags: string | number): number {
  if (typeof flags === 'number' && Number.isSafeInteger(flags) && flags >= 0) return flags;
  const n = typeof flags === 'string' ? BY_NAME[flags] : undefined;
  if (n === undefined) {
    const e = new TypeError(`invalid open flags: ${String(flags)}`) as TypeError & { code: string };
    e.code = 'ERR_INVALID_ARG_VALUE';
    throw e;
  }
  return n;
}

/** True when the flags open for writing or change the file (O_WRONLY, O_RDWR, O_TRUNC). */
export function opensForChange(flags: number): boolean {
  return (flags & 3) !== O_RDONLY || (flags & O_TRUNC) !== 0;
}
