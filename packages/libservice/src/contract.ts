// The Libservice contract: an async, handle-based, POSIX-like filesystem
// service. Paths are absolute within the service ('/', '/a/b'); handles are
// small integers the service hands out from `open`. Every method rejects
// with an FsError (see errors.ts) on failure.

/** The attributes of a file, as node:fs's `Stats` carries them (times in milliseconds). */
export interface StatRecord {
  dev: number;
  ino: number;
  /** File type and permission bits, as `st_mode`. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blksize: number;
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  birthtimeMs: number;
}

/** Directory entry types: the values of `d_type` (DT_*) on Linux. */
export const EntryType = {
  Unknown: 0,
  Fifo: 1,
  CharDevice: 2,
  Directory: 4,
  BlockDevice: 6,
  File: 8,
  Symlink: 10,
  Socket: 12,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** One entry of a directory listing ('.' and '..' are never listed). */
export interface DirEntry {
  name: string;
  type: EntryType;
}

/** Filesystem statistics, as node:fs's `StatFs` carries them. */
export interface StatFsRecord {
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
}

/** Options of {@link Libservice.rename}. */
export interface RenameOptions {
  /** Fail with EEXIST instead of replacing an existing destination (renameat2's RENAME_NOREPLACE). */
  noReplace?: boolean;
}

/**
 * A user-level filesystem service. Libservices stack (a union over local
 * directories, over CephFS...) and a stack is what an I/O service serves.
 *
 * Flags and modes are Linux's numeric values (`fs.constants.O_*`, `S_I*`);
 * `parseOpenFlags` turns node:fs's string flags ('r', 'a+', 'wx'...) into them.
 */
export interface Libservice {
  /** Opens (and with O_CREAT creates, with `mode` less the umask of the service) a file; returns its handle. */
  open(path: string, flags: number, mode?: number): Promise<number>;
  close(handle: number): Promise<void>;
  /**
   * Reads up to `length` bytes into `buffer` at `offset`, from `position`
   * or, when it is null, from the handle's position (which then advances).
   * Returns the number of bytes read: 0 at the end of the file.
   */
  read(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number>;
  /** Writes `length` bytes of `buffer` from `offset`, at `position` or at the handle's position (O_APPEND: at the end). */
  write(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number>;
  stat(path: string): Promise<StatRecord>;
  lstat(path: string): Promise<StatRecord>;
  fstat(handle: number): Promise<StatRecord>;
  readdir(path: string): Promise<DirEntry[]>;
  mkdir(path: string, mode?: number): Promise<void>;
  rmdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rename(from: string, to: string, options?: RenameOptions): Promise<void>;
  link(existing: string, path: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  truncate(path: string, length: number): Promise<void>;
  ftruncate(handle: number, length: number): Promise<void>;
  fsync(handle: number): Promise<void>;
  fdatasync(handle: number): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  /** Sets the access and modification times (milliseconds since the epoch). */
  utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void>;
  /** chmod of the file a handle has open (whatever its path is now). */
  fchmod(handle: number, mode: number): Promise<void>;
  /** chown of the file a handle has open. */
  fchown(handle: number, uid: number, gid: number): Promise<void>;
  /** utimes of the file a handle has open (milliseconds since the epoch). */
  futimes(handle: number, atimeMs: number, mtimeMs: number): Promise<void>;
  /** Checks `mode` (F_OK, or R_OK | W_OK | X_OK) for the service's user. */
  access(path: string, mode?: number): Promise<void>;
  statfs(path: string): Promise<StatFsRecord>;
  /** Closes every handle still open and releases the service; later calls fail with EBADF or ENOTCONN (as a FUSE mount that went away). */
  unmount(): Promise<void>;
}

/**
 * The sync twins of the contract's operations (`statSync`...), for
 * libservices that can also answer on the calling thread, blocking it.
 */
export type SyncLibservice = {
  [K in Exclude<keyof Libservice, 'unmount'> as `${K}Sync`]: (...args: Parameters<Libservice[K]>) => Awaited<ReturnType<Libservice[K]>>;
};

/**
 * Whether `v` looks like a libservice (has the contract's methods): the
 * check options schemas use for a libservice handed in by a caller.
 */
export function isLibservice(v: unknown): v is Libservice {
  return typeof v === 'object' && v !== null && ['open', 'readdir', 'lstat', 'rename', 'unmount'].every((m) => typeof (v as Record<string, unknown>)[m] === 'function');
}
