// createIoLibrary: an object shaped like node:fs (sync, callback and
// promise APIs) whose paths under a mount go to that mount's I/O service,
// and all others to node:fs itself (the kernel path). Descriptors of
// mounted files are numbers from 2^30 up, where the kernel gives none.
import { EntryType, FsError, parseOpenFlags } from '@polytropon/libservice';
import type { StatFsRecord } from '@polytropon/libservice';
import * as nodeFs from 'node:fs';
import type { Mount, Mounts, PathLike, Routed } from './mounts.js';
import { MountTable, pathString } from './mounts.js';
import { IoFileHandle, type FileOps } from './file-handle.js';
import { IoDirent, IoStats } from './records.js';
import * as steps from './steps.js';
import { call, runAsync, runSync, type Steps } from './steps.js';

const { constants } = nodeFs;

/** Descriptors of mounted files start here: far above any the kernel gives (RLIMIT_NOFILE is at most 2^20 here). */
export const FD_BASE = 1 << 30;

interface OpenFile {
  mount: Mount;
  handle: number;
  epoch: number;
}

type Encoding = BufferEncoding | null | undefined;
type EncodingOption = Encoding | { encoding?: Encoding; flag?: string | number; mode?: number } | undefined;

const encodingOf = (o: EncodingOption): Encoding => (typeof o === 'string' || o === null ? o : o?.encoding);
const flagOf = (o: EncodingOption, fallback: string): number => parseOpenFlags(typeof o === 'object' && o !== null && o.flag !== undefined ? o.flag : fallback);
const modeOf = (o: EncodingOption): number => (typeof o === 'object' && o !== null && o.mode !== undefined ? o.mode : 0o666);
const bytes = (data: string | Uint8Array, enc: Encoding): Uint8Array => (typeof data === 'string' ? Buffer.from(data, enc ?? 'utf8') : data);
const toMs = (t: number | string | Date): number => (t instanceof Date ? t.getTime() : typeof t === 'string' ? Number(t) * 1000 : t * 1000);

/** Rebuilds a service error with the caller's own paths (the service saw paths within its instance). */
function userError(e: unknown, path?: PathLike, dest?: PathLike): unknown {
  if (!(e instanceof FsError)) return e;
  return new FsError(e.code as never, e.syscall, e.path !== undefined && path !== undefined ? pathString(path) : undefined, e.dest !== undefined && dest !== undefined ? pathString(dest) : undefined);
}

export type IoLibrary = ReturnType<typeof createIoLibrary>;

export interface IoLibraryOptions {
  /** Mount point (an absolute path) to `'endpoint/instance'` or `{ endpoint, instance }`. */
  mounts: Mounts;
  /**
   * Nanoseconds a call spins for its reply before it sleeps (default the
   * channel's, 50,000). Spinning answers fastest while there are cores to
   * spare; with more calling threads than cores, less spinning leaves the
   * cores to the service.
   */
  spinNs?: number;
}

/** Builds a node:fs-shaped object routing mounted paths to their I/O services. */
export function createIoLibrary(options: IoLibraryOptions) {
  if (options.spinNs !== undefined && (!Number.isSafeInteger(options.spinNs) || options.spinNs < 0)) {
    throw Object.assign(new TypeError(`spinNs must be a non-negative integer, got ${String(options.spinNs)}`), { code: 'ERR_INVALID_ARG_VALUE' });
  }
  const table = new MountTable(options.mounts, options.spinNs);
  // node:fs as it is now: the register hook replaces node:fs's functions
  // with this library's, whose kernel paths must still reach the originals.
  const kernelFs = { ...nodeFs };
  const kernelFsp = { ...nodeFs.promises };
  const files = new Map<number, OpenFile>();
  let nextFd = FD_BASE;

  const addFd = (mount: Mount, handle: number): number => {
    const fd = nextFd++;
    files.set(fd, { mount, handle, epoch: mount.epoch });
    return fd;
  };
  /** The open file of a mounted descriptor, or undefined for a kernel one. */
  const fileOf = (fd: number, syscall: string): OpenFile | undefined => {
    if (typeof fd !== 'number' || fd < FD_BASE) return undefined;
    const f = files.get(fd);
    // A file opened through a service that has since gone is gone with it.
    if (!f || f.epoch !== f.mount.epoch) throw new FsError('EBADF', syscall);
    return f;
  };

  /**
   * One operation in both forms: `sync` and `async` route a path (or a
   * descriptor) to the mounted steps or to node:fs.
   */
  function routed<A extends unknown[], R>(
    route: (...a: A) => { steps: () => Steps<R>; path?: PathLike; dest?: PathLike } | undefined,
    kernelSync: (...a: A) => R,
    kernelAsync: (...a: A) => Promise<R>,
  ) {
    return {
      sync: (...a: A): R => {
        const r = route(...a);
        if (!r) return kernelSync(...a);
        try {
          return runSync(r.steps());
        } catch (e) {
          throw userError(e, r.path, r.dest);
        }
      },
      async: async (...a: A): Promise<R> => {
        const r = route(...a);
        if (!r) return kernelAsync(...a);
        try {
          return await runAsync(r.steps());
        } catch (e) {
          throw userError(e, r.path, r.dest);
        }
      },
    };
  }
  /** An operation on a path. */
  const byPath = <A extends unknown[], R>(mounted: (r: Routed, ...a: A) => Steps<R>, kernelSync: (p: PathLike, ...a: A) => R, kernelAsync: (p: PathLike, ...a: A) => Promise<R>) =>
    routed<[PathLike, ...A], R>(
      (p, ...a) => {
        const r = table.route(p);
        return r && { steps: () => mounted(r, ...a), path: p };
      },
      kernelSync,
      kernelAsync,
    );
  /** An operation on a descriptor. */
  const byFd = <A extends unknown[], R>(syscall: string, mounted: (f: OpenFile, ...a: A) => Steps<R>, kernelSync: (fd: number, ...a: A) => R, kernelAsync: (fd: number, ...a: A) => Promise<R>) =>
    routed<[number, ...A], R>(
      (fd, ...a) => {
        const f = fileOf(fd, syscall);
        return f && { steps: () => mounted(f, ...a) };
      },
      kernelSync,
      kernelAsync,
    );

  const promisify =
    <A extends unknown[], R>(f: (...args: [...A, (e: NodeJS.ErrnoException | null, r?: R) => void]) => void) =>
    (...a: A): Promise<R> =>
      new Promise((res, rej) => f(...a, (e, r) => (e ? rej(e) : res(r as R))));

  // --- descriptors ---------------------------------------------------------------

  const open = routed<[PathLike, (string | number)?, number?], number>(
    (p, flags = 'r', mode = 0o666) => {
      const r = table.route(p);
      return r && { path: p, steps: () => (function* () { return addFd(r.mount, yield* call(r.mount, 'open', r.path, parseOpenFlags(flags), mode)); })() };
    },
    (p, flags = 'r', mode) => kernelFs.openSync(p, flags, mode),
    promisify<[PathLike, (string | number)?, number?], number>((p, flags, mode, cb) => kernelFs.open(p, flags ?? 'r', mode, cb)),
  );

  const close = byFd<[], void>(
    'close',
    function* (f) {
      for (const [fd, g] of files) if (g === f) files.delete(fd);
      yield* call(f.mount, 'close', f.handle);
    },
    (fd) => kernelFs.closeSync(fd),
    promisify<[number], void>((fd, cb) => kernelFs.close(fd, cb)),
  );

  type ReadArgs = [buffer: NodeJS.ArrayBufferView, offset?: number | null, length?: number | null, position?: number | bigint | null];
  const read = byFd<ReadArgs, number>(
    'read',
    (f, buffer, offset, length, position) => {
      const view = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      const off = offset ?? 0;
      return call(f.mount, 'read', f.handle, view, off, length ?? view.byteLength - off, position === null || position === undefined || position === -1 ? null : Number(position));
    },
    (fd, buffer, offset, length, position) => kernelFs.readSync(fd, buffer, offset ?? 0, length ?? buffer.byteLength - (offset ?? 0), position ?? null),
    (fd, buffer, offset, length, position) =>
      new Promise((res, rej) => kernelFs.read(fd, buffer, offset ?? 0, length ?? buffer.byteLength - (offset ?? 0), position ?? null, (e, n) => (e ? rej(e) : res(n)))),
  );

  type WriteArgs = [data: NodeJS.ArrayBufferView | string, offsetOrPosition?: number | null, lengthOrEncoding?: number | BufferEncoding | null, position?: number | null];
  /** write(fd, buffer, offset?, length?, position?) or write(fd, string, position?, encoding?), as node:fs. */
  const writeArgs = (data: WriteArgs[0], a: WriteArgs[1], b: WriteArgs[2], c: WriteArgs[3]): [Uint8Array, number, number, number | null] => {
    if (typeof data === 'string') {
      const buf = Buffer.from(data, typeof b === 'string' ? b : 'utf8');
      return [buf, 0, buf.length, a ?? null];
    }
    const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const off = a ?? 0;
    return [view, off, typeof b === 'number' ? b : view.byteLength - off, c ?? null];
  };
  const write = byFd<WriteArgs, number>(
    'write',
    (f, data, a, b, c) => call(f.mount, 'write', f.handle, ...writeArgs(data, a, b, c)),
    (fd, data, a, b, c) => kernelFs.writeSync(fd, ...writeArgs(data, a, b, c)),
    (fd, data, a, b, c) => new Promise((res, rej) => kernelFs.write(fd, ...writeArgs(data, a, b, c), (e, n) => (e ? rej(e) : res(n)))),
  );

  const fstat = byFd<[], IoStats | nodeFs.Stats>(
    'fstat',
    function* (f) {
      return new IoStats(yield* call(f.mount, 'fstat', f.handle));
    },
    (fd) => kernelFs.fstatSync(fd),
    promisify<[number], nodeFs.Stats>((fd, cb) => kernelFs.fstat(fd, cb)),
  );
  const ftruncate = byFd<[number?], void>(
    'ftruncate',
    (f, len = 0) => call(f.mount, 'ftruncate', f.handle, len),
    (fd, len) => kernelFs.ftruncateSync(fd, len),
    promisify<[number, number?], void>((fd, len, cb) => kernelFs.ftruncate(fd, len, cb)),
  );
  const fsync = byFd<[], void>('fsync', (f) => call(f.mount, 'fsync', f.handle), (fd) => kernelFs.fsyncSync(fd), promisify<[number], void>((fd, cb) => kernelFs.fsync(fd, cb)));
  const fdatasync = byFd<[], void>('fdatasync', (f) => call(f.mount, 'fdatasync', f.handle), (fd) => kernelFs.fdatasyncSync(fd), promisify<[number], void>((fd, cb) => kernelFs.fdatasync(fd, cb)));

  // --- whole files -------------------------------------------------------------------

  type FileRef = PathLike | number;
  const fileRoute = <R>(ref: FileRef, syscall: string, onPath: (r: Routed) => Steps<R>, onFd: (f: OpenFile) => Steps<R>) => {
    if (typeof ref === 'number') {
      const f = fileOf(ref, syscall);
      return f && { steps: () => onFd(f) };
    }
    const r = table.route(ref);
    return r && { steps: () => onPath(r), path: ref };
  };
  const decode = (b: Buffer, enc: Encoding) => (enc ? b.toString(enc) : b);

  const readFile = routed<[FileRef, EncodingOption?], Buffer | string>(
    (ref, o) =>
      fileRoute(
        ref,
        'read',
        function* (r) {
          return decode(yield* steps.readFile(r.mount, r.path), encodingOf(o));
        },
        function* (f) {
          return decode(yield* steps.readAll(f.mount, f.handle), encodingOf(o));
        },
      ),
    (ref, o) => kernelFs.readFileSync(ref, o as never),
    (ref, o) => (typeof ref === 'number' ? promisify<[number, EncodingOption], Buffer | string>((fd, opt, cb) => kernelFs.readFile(fd, opt as never, cb as never))(ref, o) : kernelFsp.readFile(ref, o as never)),
  );

  const writeLike = (fallbackFlag: string, kernelSync: typeof kernelFs.appendFileSync, kernelAsync: typeof kernelFsp.appendFile, kernelCb: typeof kernelFs.appendFile) =>
    routed<[FileRef, string | Uint8Array, EncodingOption?], void>(
      (ref, data, o) =>
        fileRoute(
          ref,
          'write',
          (r) => steps.writeFile(r.mount, r.path, bytes(data, encodingOf(o)), flagOf(o, fallbackFlag), modeOf(o)),
          (f) => steps.writeAll(f.mount, f.handle, bytes(data, encodingOf(o))),
        ),
      (ref, data, o) => kernelSync(ref, data, o as never),
      (ref, data, o) => (typeof ref === 'number' ? promisify<[number, string | Uint8Array, EncodingOption], void>((fd, d, opt, cb) => kernelCb(fd, d, opt as never, cb))(ref, data, o) : kernelAsync(ref, data, o as never)),
    );
  const writeFile = writeLike('w', kernelFs.writeFileSync, kernelFsp.writeFile, kernelFs.writeFile);
  const appendFile = writeLike('a', kernelFs.appendFileSync, kernelFsp.appendFile, kernelFs.appendFile);

  // --- paths -------------------------------------------------------------------------

  type StatOptions = { bigint?: false; throwIfNoEntry?: boolean } | undefined;
  const statLike = (op: 'stat' | 'lstat') =>
    byPath<[StatOptions?], IoStats | nodeFs.Stats | undefined>(
      function* (r) {
        return new IoStats(yield* call(r.mount, op, r.path));
      },
      (p, o) => (op === 'stat' ? kernelFs.statSync(p, o) : kernelFs.lstatSync(p, o)),
      (p, o) => (op === 'stat' ? kernelFsp.stat(p, o) : kernelFsp.lstat(p, o)),
    );
  const stat = statLike('stat');
  const lstat = statLike('lstat');

  type ReaddirOptions = BufferEncoding | { encoding?: BufferEncoding | null; withFileTypes?: boolean; recursive?: boolean } | null | undefined;
  const readdir = routed<[PathLike, ReaddirOptions?], string[] | IoDirent[] | nodeFs.Dirent[]>(
    (p, o) => {
      const r = table.route(p);
      const withTypes = typeof o === 'object' && o !== null && o.withFileTypes === true;
      const recursive = typeof o === 'object' && o !== null && o.recursive === true;
      return (
        r && {
          path: p,
          steps: function* () {
            const top = pathString(p);
            // As node:fs: a directory's entries, then (recursive) those of its
            // subdirectories, breadth first; names relative to `p`, or Dirents
            // with their own parent's path. Symlinks to directories are not followed.
            const out: (string | IoDirent)[] = [];
            const queue = [''];
            while (queue.length > 0) {
              const rel = queue.shift() as string;
              const inner = rel === '' ? r.path : (r.path === '/' ? '' : r.path) + '/' + rel;
              for (const e of yield* call(r.mount, 'readdir', inner)) {
                const name = rel === '' ? e.name : `${rel}/${e.name}`;
                out.push(withTypes ? new IoDirent(e, rel === '' ? top : `${top}/${rel}`) : name);
                if (recursive && e.type === EntryType.Directory) queue.push(name);
              }
            }
            return out as string[] | IoDirent[];
          },
        }
      );
    },
    (p, o) => kernelFs.readdirSync(p, o as never) as string[],
    (p, o) => kernelFsp.readdir(p, o as never) as Promise<string[]>,
  );

  type MkdirOptions = number | { recursive?: boolean; mode?: number } | undefined;
  const mkdir = byPath<[MkdirOptions?], string | undefined>(
    function* (r, o) {
      const mode = typeof o === 'number' ? o : (o?.mode ?? 0o777);
      if (typeof o === 'object' && o.recursive === true) {
        const first = yield* steps.mkdirRecursive(r.mount, r.path, mode);
        return first === undefined ? undefined : r.mount.point + (r.mount.point === '/' ? first.slice(1) : first);
      }
      yield* call(r.mount, 'mkdir', r.path, mode);
      return undefined;
    },
    (p, o) => kernelFs.mkdirSync(p, o),
    (p, o) => kernelFsp.mkdir(p, o),
  );

  type RmOptions = { recursive?: boolean; force?: boolean } | undefined;
  const rm = byPath<[RmOptions?], void>(
    (r, o) => steps.rm(r.mount, r.path, o?.recursive === true, o?.force === true),
    (p, o) => kernelFs.rmSync(p, o),
    (p, o) => kernelFsp.rm(p, o),
  );
  const rmdir = byPath<[], void>((r) => call(r.mount, 'rmdir', r.path), (p) => kernelFs.rmdirSync(p), (p) => kernelFsp.rmdir(p));
  const unlink = byPath<[], void>((r) => call(r.mount, 'unlink', r.path), (p) => kernelFs.unlinkSync(p), (p) => kernelFsp.unlink(p));
  const truncate = byPath<[number?], void>((r, len = 0) => call(r.mount, 'truncate', r.path, len), (p, len) => kernelFs.truncateSync(p, len), (p, len) => kernelFsp.truncate(p, len));
  const access = byPath<[number?], void>((r, mode = constants.F_OK) => call(r.mount, 'access', r.path, mode), (p, mode) => kernelFs.accessSync(p, mode), (p, mode) => kernelFsp.access(p, mode));
  const chown = byPath<[number, number], void>((r, uid, gid) => call(r.mount, 'chown', r.path, uid, gid), (p, uid, gid) => kernelFs.chownSync(p, uid, gid), (p, uid, gid) => kernelFsp.chown(p, uid, gid));
  const statfs = byPath<[], StatFsRecord | nodeFs.StatsFs>((r) => call(r.mount, 'statfs', r.path), (p) => kernelFs.statfsSync(p), (p) => kernelFsp.statfs(p));
  const chmod = byPath<[number], void>((r, mode) => call(r.mount, 'chmod', r.path, mode), (p, mode) => kernelFs.chmodSync(p, mode), (p, mode) => kernelFsp.chmod(p, mode));
  const utimes = byPath<[number | string | Date, number | string | Date], void>(
    (r, a, m) => call(r.mount, 'utimes', r.path, toMs(a), toMs(m)),
    (p, a, m) => kernelFs.utimesSync(p, a, m),
    (p, a, m) => kernelFsp.utimes(p, a, m),
  );
  const readlink = byPath<[], string>((r) => call(r.mount, 'readlink', r.path), (p) => kernelFs.readlinkSync(p), (p) => kernelFsp.readlink(p));
  const realpath = byPath<[], string>(
    function* (r) {
      const inner = yield* steps.realpath(r.mount, r.path);
      return inner === '/' ? r.mount.point : (r.mount.point === '/' ? '' : r.mount.point) + inner;
    },
    (p) => kernelFs.realpathSync(p),
    (p) => kernelFsp.realpath(p),
  );
  const symlink = routed<[string, PathLike], void>(
    (target, p) => {
      const r = table.route(p);
      return r && { path: target, dest: p, steps: () => call(r.mount, 'symlink', target, r.path) };
    },
    (target, p) => kernelFs.symlinkSync(target, p),
    (target, p) => kernelFsp.symlink(target, p),
  );

  /** rename and link: both paths under one mount, or both on the kernel path; EXDEV otherwise. */
  const twoPaths = (op: 'rename' | 'link', kernelSync: (a: PathLike, b: PathLike) => void, kernelAsync: (a: PathLike, b: PathLike) => Promise<void>) =>
    routed<[PathLike, PathLike], void>(
      (from, to) => {
        const [a, b] = [table.route(from), table.route(to)];
        if (!a && !b) return undefined;
        if (!a || !b || a.mount !== b.mount) {
          return { path: from, dest: to, steps: () => (function* (): Steps<void> { throw new FsError('EXDEV', op, pathString(from), pathString(to)); })() };
        }
        return { path: from, dest: to, steps: () => call(a.mount, op, a.path, b.path) };
      },
      kernelSync,
      kernelAsync,
    );
  const rename = twoPaths('rename', kernelFs.renameSync, kernelFsp.rename);
  const link = twoPaths('link', kernelFs.linkSync, kernelFsp.link);

  const existsSync = (p: PathLike): boolean => {
    try {
      stat.sync(p);
      return true;
    } catch {
      return false;
    }
  };

  // --- the three APIs ----------------------------------------------------------------

  const ops = { open, close, read, write, fstat, ftruncate, fsync, fdatasync, readFile, writeFile, appendFile, stat, lstat, readdir, mkdir, rm, rmdir, unlink, truncate, access, chmod, chown, statfs, utimes, readlink, realpath, symlink, rename, link };
  type Ops = typeof ops;

  const fileOps: FileOps = {
    read: read.async,
    write: write.async,
    close: close.async,
    fstat: fstat.async as FileOps['fstat'],
    ftruncate: ftruncate.async,
    fsync: fsync.async,
    fdatasync: fdatasync.async,
    readFile: readFile.async,
    writeFile: writeFile.async,
    appendFile: appendFile.async,
  };

  const sync = Object.fromEntries(Object.entries(ops).map(([name, op]) => [`${name}Sync`, op.sync])) as { [K in keyof Ops as `${K}Sync`]: Ops[K]['sync'] };
  /** node:fs's callback form: the callback is the last argument; the others as in the sync form. */
  const callbacks = Object.fromEntries(
    Object.entries(ops).map(([name, op]) => [
      name,
      (...args: unknown[]) => {
        const cb = args.pop();
        if (typeof cb !== 'function') throw Object.assign(new TypeError('The "cb" argument must be of type function'), { code: 'ERR_INVALID_ARG_TYPE' });
        (op.async as (...a: unknown[]) => Promise<unknown>)(...args).then(
          (v) => (name === 'read' || name === 'write' ? cb(null, v, args[1]) : cb(null, v)),
          (e) => cb(e),
        );
      },
    ]),
  ) as { [K in keyof Ops]: (...args: unknown[]) => void };

  const promises = {
    ...(Object.fromEntries(Object.entries(ops).map(([name, op]) => [name, op.async])) as { [K in keyof Ops]: Ops[K]['async'] }),
    /** Opens a file: node:fs's FileHandle for a kernel path, an IoFileHandle for a mounted one. */
    open: async (p: PathLike, flags?: string | number, mode?: number): Promise<IoFileHandle | nodeFs.promises.FileHandle> =>
      table.route(p) ? new IoFileHandle(await open.async(p, flags, mode), fileOps) : kernelFsp.open(p, flags, mode),
    constants,
  };

  /** node:fs's own streams, with their file operations pointed at this library. */
  const streamFs = { open: callbacks.open, close: callbacks.close, read: callbacks.read, write: callbacks.write };
  const createReadStream = (p: PathLike, o?: Parameters<typeof nodeFs.createReadStream>[1]) =>
    table.route(p) ? kernelFs.createReadStream(p, { ...(typeof o === 'string' ? { encoding: o } : o), fs: streamFs } as never) : kernelFs.createReadStream(p, o);
  const createWriteStream = (p: PathLike, o?: Parameters<typeof nodeFs.createWriteStream>[1]) =>
    table.route(p) ? kernelFs.createWriteStream(p, { ...(typeof o === 'string' ? { encoding: o } : o), fs: streamFs } as never) : kernelFs.createWriteStream(p, o);

  return {
    ...sync,
    ...callbacks,
    existsSync,
    exists: (p: PathLike, cb: (exists: boolean) => void) => void stat.async(p).then(() => cb(true), () => cb(false)),
    createReadStream,
    createWriteStream,
    promises,
    constants,
    /** The mount a path is under (and its path within the instance), or undefined for a kernel path. */
    route: (p: PathLike) => table.route(p),
    /** Whether a descriptor is one of this library's (a mounted file). */
    isMountedFd: (fd: number) => fd >= FD_BASE && files.has(fd),
    /** Detaches from every service (the services close this process's handles once it has no client left). */
    async detach(): Promise<void> {
      files.clear();
      for (const m of table.mounts) m.drop();
    },
  };
}
