// The system calls of the local libservice, made one of two ways:
//
// - inline: on the calling thread (fs.*Sync). A call on cached metadata or
//   page-cache data costs ~2 µs here, against ~55 µs for the same call
//   through libuv's thread pool on these VMs (the hand-off to a pool thread
//   and back dominates). An I/O service gives the libservice its own thread,
//   so blocking it for a system call is what it wants.
// - threadpool: through libuv's pool (fs callbacks), for hosts whose event
//   loop must not block on a slow filesystem (a network mount).
//
// fsync and fdatasync always go through the pool: they wait for the device.
import * as fs from 'node:fs';
import * as os from 'node:os';

export interface Syscalls {
  lstat(path: string): Promise<fs.Stats>;
  stat(path: string): Promise<fs.Stats>;
  readlink(path: string): Promise<string>;
  readdir(path: string): Promise<fs.Dirent[]>;
  mkdir(path: string, mode: number): Promise<unknown>;
  rmdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  link(existing: string, path: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  truncate(path: string, length: number): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  utimes(path: string, atime: number, mtime: number): Promise<void>;
  access(path: string, mode: number): Promise<void>;
  statfs(path: string): Promise<fs.StatsFs>;
  open(path: string, flags: number, mode: number): Promise<number>;
  close(fd: number): Promise<void>;
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number>;
  write(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number>;
  fstat(fd: number): Promise<fs.Stats>;
  ftruncate(fd: number, length: number): Promise<void>;
  fchmod(fd: number, mode: number): Promise<void>;
  fchown(fd: number, uid: number, gid: number): Promise<void>;
  futimes(fd: number, atime: number, mtime: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  fdatasync(fd: number): Promise<void>;
}

/** A synchronous call as a settled promise (a throw becomes a rejection). */
function lift<A extends unknown[], R>(f: (...args: A) => R): (...args: A) => Promise<R> {
  return (...args) => {
    try {
      return Promise.resolve(f(...args));
    } catch (e) {
      return Promise.reject(e);
    }
  };
}

/** A callback-style call as a promise. */
function pooled<A extends unknown[], R>(f: (...args: [...A, (e: NodeJS.ErrnoException | null, r?: R) => void]) => void): (...args: A) => Promise<R> {
  return (...args) => new Promise((resolve, reject) => f(...args, (e, r) => (e ? reject(e) : resolve(r as R))));
}

/**
 * node:fs's ENOENT for `syscall` on `path`, without a stack trace (which
 * costs more than the system call): a lookup that misses is routine for a
 * resolver and a union, and callers turn it into their own error anyway.
 */
function noEntry(syscall: string, path: string): NodeJS.ErrnoException {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const e: NodeJS.ErrnoException = new Error(`ENOENT: no such file or directory, ${syscall} '${path}'`);
  Error.stackTraceLimit = limit;
  return Object.assign(e, { code: 'ENOENT', errno: -os.constants.errno.ENOENT, syscall, path });
}

const hidesNotDir = new Map<'stat' | 'lstat', boolean>();

/**
 * Whether this Node's `fs.statSync` / `fs.lstatSync` with `throwIfNoEntry:
 * false` answers ENOTDIR with undefined, as it does ENOENT. Node 24's
 * statSync does; its lstatSync, and both on Node 20, throw. Asked once per
 * process, of a path under a file.
 */
export function throwIfNoEntryHidesNotDir(op: 'stat' | 'lstat'): boolean {
  let v = hidesNotDir.get(op);
  if (v === undefined) {
    try {
      v = fs[`${op}Sync`](`${process.execPath}/x`, { throwIfNoEntry: false }) === undefined;
    } catch {
      v = false;
    }
    hidesNotDir.set(op, v);
  }
  return v;
}

/** lstat or stat, with a miss answered without a thrown (and stack-traced) error. */
const lookup = (op: 'stat' | 'lstat') => (p: string): Promise<fs.Stats> => {
  const f = op === 'stat' ? fs.statSync : fs.lstatSync;
  try {
    const st = f(p, { throwIfNoEntry: false });
    if (st) return Promise.resolve(st);
    // Where undefined may be ENOTDIR too, ask again for the real error.
    return throwIfNoEntryHidesNotDir(op) ? Promise.resolve(f(p)) : Promise.reject(noEntry(op, p));
  } catch (e) {
    return Promise.reject(e);
  }
};

const fsync = pooled<[number], void>(fs.fsync);
const fdatasync = pooled<[number], void>(fs.fdatasync);

export const inlineSyscalls: Syscalls = {
  lstat: lookup('lstat'),
  stat: lookup('stat'),
  readlink: lift((p: string) => fs.readlinkSync(p)),
  readdir: lift((p: string) => fs.readdirSync(p, { withFileTypes: true })),
  mkdir: lift((p: string, mode: number) => fs.mkdirSync(p, mode)),
  rmdir: lift((p: string) => fs.rmdirSync(p)),
  unlink: lift((p: string) => fs.unlinkSync(p)),
  rename: lift((a: string, b: string) => fs.renameSync(a, b)),
  link: lift((a: string, b: string) => fs.linkSync(a, b)),
  symlink: lift((t: string, p: string) => fs.symlinkSync(t, p)),
  truncate: lift((p: string, n: number) => fs.truncateSync(p, n)),
  chmod: lift((p: string, m: number) => fs.chmodSync(p, m)),
  chown: lift((p: string, u: number, g: number) => fs.chownSync(p, u, g)),
  utimes: lift((p: string, a: number, m: number) => fs.utimesSync(p, a, m)),
  access: lift((p: string, m: number) => fs.accessSync(p, m)),
  statfs: lift((p: string) => fs.statfsSync(p)),
  open: lift((p: string, f: number, m: number) => fs.openSync(p, f, m)),
  close: lift((fd: number) => fs.closeSync(fd)),
  read: lift((fd: number, b: Uint8Array, o: number, l: number, p: number | null) => fs.readSync(fd, b, o, l, p)),
  write: lift((fd: number, b: Uint8Array, o: number, l: number, p: number | null) => fs.writeSync(fd, b, o, l, p)),
  fstat: lift((fd: number) => fs.fstatSync(fd)),
  ftruncate: lift((fd: number, n: number) => fs.ftruncateSync(fd, n)),
  fchmod: lift((fd: number, m: number) => fs.fchmodSync(fd, m)),
  fchown: lift((fd: number, u: number, g: number) => fs.fchownSync(fd, u, g)),
  futimes: lift((fd: number, a: number, m: number) => fs.futimesSync(fd, a, m)),
  fsync,
  fdatasync,
};

const fsp = fs.promises;

export const threadpoolSyscalls: Syscalls = {
  lstat: (p) => fsp.lstat(p),
  stat: (p) => fsp.stat(p),
  readlink: (p) => fsp.readlink(p),
  readdir: (p) => fsp.readdir(p, { withFileTypes: true }),
  mkdir: (p, mode) => fsp.mkdir(p, mode),
  rmdir: (p) => fsp.rmdir(p),
  unlink: (p) => fsp.unlink(p),
  rename: (a, b) => fsp.rename(a, b),
  link: (a, b) => fsp.link(a, b),
  symlink: (t, p) => fsp.symlink(t, p),
  truncate: (p, n) => fsp.truncate(p, n),
  chmod: (p, m) => fsp.chmod(p, m),
  chown: (p, u, g) => fsp.chown(p, u, g),
  utimes: (p, a, m) => fsp.utimes(p, a, m),
  access: (p, m) => fsp.access(p, m),
  statfs: (p) => fsp.statfs(p),
  open: pooled<[string, number, number], number>(fs.open),
  close: pooled<[number], void>(fs.close),
  read: pooled<[number, Uint8Array, number, number, number | null], number>(fs.read),
  write: pooled<[number, Uint8Array, number, number, number | null], number>(fs.write),
  fstat: pooled<[number], fs.Stats>(fs.fstat),
  ftruncate: pooled<[number, number], void>(fs.ftruncate),
  fchmod: pooled<[number, number], void>(fs.fchmod),
  fchown: pooled<[number, number, number], void>(fs.fchown),
  futimes: pooled<[number, number, number], void>(fs.futimes),
  fsync,
  fdatasync,
};
