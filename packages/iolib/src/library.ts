// createIoLibrary: an object shaped like node:fs (sync, callback and
// promise APIs) whose paths under a mount go to that mount's I/O service,
// and all others to node:fs itself (the kernel path). Descriptors of
// mounted files are numbers from 2^30 up, where the kernel gives none.
import { randomBytes } from 'node:crypto';
import { EntryType, FsError, hasCode, parseOpenFlags, throwIfNoEntryHidesNotDir } from '@polytropon/libservice';
import type { StatFsRecord } from '@polytropon/libservice';
import * as nodeFs from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { Mount, Mounts, PathLike, Routed } from './mounts.js';
import { MountTable, pathString } from './mounts.js';
import { IoFileHandle, type FileOps } from './file-handle.js';
import { StatWatchers, watchMounted, watchMountedAsync, type WatchFs, type WatchOptions } from './watch.js';
import { IoDirent, IoStats } from './records.js';
import { IoDir } from './dir.js';
import { cp as cpSteps, type CpFs, type CpOptions } from './cp.js';
import * as steps from './steps.js';
import { call, host, onClient, runAsync, runSync, type Steps } from './steps.js';

const { constants } = nodeFs;

/** Descriptors of mounted files start here: far above any the kernel gives (RLIMIT_NOFILE is at most 2^20 here). */
export const FD_BASE = 1 << 30;

interface OpenFile {
  /** Its number in this library. */
  fd: number;
  mount: Mount;
  handle: number;
  epoch: number;
}

type Encoding = BufferEncoding | null | undefined;
type EncodingOption = Encoding | { encoding?: Encoding; flag?: string | number; mode?: number } | undefined;

const encodingOf = (o: EncodingOption): Encoding => (typeof o === 'string' || o === null ? o : o?.encoding);
const flagOf = (o: EncodingOption, fallback: string): number => parseOpenFlags(typeof o === 'object' && o !== null && o.flag !== undefined ? o.flag : fallback);
/** A mode as node:fs takes it: a number, or a string of octal digits ('755'). */
const fileMode = (m: number | string): number => (typeof m === 'string' && /^[0-7]+$/.test(m) ? parseInt(m, 8) : (m as number));
const modeOf = (o: EncodingOption): number => (typeof o === 'object' && o !== null && o.mode !== undefined ? o.mode : 0o666);
/** The bytes of a string (in its encoding) or of any ArrayBufferView (a DataView or a Uint16Array counts its bytes). */
const bytes = (data: string | NodeJS.ArrayBufferView, enc: Encoding): Uint8Array =>
  typeof data === 'string' ? Buffer.from(data, enc ?? 'utf8') : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
const toMs = (t: number | string | Date): number => (t instanceof Date ? t.getTime() : typeof t === 'string' ? Number(t) * 1000 : t * 1000);

/** What a Direct form answers for a call that is not for a mounted file. */
const NOT_MOUNTED: unique symbol = Symbol('not mounted');

/** Rebuilds a service error with the caller's own paths (the service saw paths within its instance). */
function userError(e: unknown, path?: PathLike, dest?: PathLike): unknown {
  // Without paths of its own (cp: its steps' errors name theirs), as it is.
  if (!(e instanceof FsError) || (path === undefined && dest === undefined)) return e;
  return new FsError(e.code as never, e.syscall, e.path !== undefined && path !== undefined ? pathString(path) : undefined, e.dest !== undefined && dest !== undefined ? pathString(dest) : undefined);
}

/**
 * Runs a sync call whose misses the caller swallows (existsSync, a stat
 * with `throwIfNoEntry: false`) with FsError stack traces off: one costs
 * about 3 µs here, and a miss through a service makes two. An error that
 * does reach the caller is made again, with its stack.
 */
function quietly<T>(f: () => T): T {
  const was = FsError.stackTraces;
  FsError.stackTraces = false;
  try {
    return f();
  } catch (e) {
    FsError.stackTraces = was;
    throw e instanceof FsError && was ? new FsError(e.code as never, e.syscall, e.path, e.dest) : e;
  } finally {
    FsError.stackTraces = was;
  }
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
    files.set(fd, { fd, mount, handle, epoch: mount.epoch });
    return fd;
  };
  /** The open file of a mounted descriptor, or undefined for a kernel one. */
  const fileOf = (fd: number, syscall: string): OpenFile | undefined => {
    if (typeof fd !== 'number' || fd < FD_BASE) return undefined;
    const f = files.get(fd);
    // A file opened through a service that has since gone is gone with it
    // (closing it frees its number all the same).
    if (!f || f.epoch !== f.mount.epoch) {
      if (f && syscall === 'close') files.delete(fd);
      throw new FsError('EBADF', syscall);
    }
    return f;
  };

  /**
   * One operation in its three forms. `route` says whether the call is for
   * a mounted file (and what to do); any other call goes to node:fs's own
   * function of that `name` with the caller's arguments untouched, so its
   * argument forms, defaults and errors are node:fs's.
   */
  type Route<R> = { steps: () => Steps<R>; path?: PathLike | undefined; dest?: PathLike | undefined; callbackExtra?: unknown };
  /**
   * The sync form of a one-call operation, straight from the caller's
   * arguments: its result, or NOT_MOUNTED for node:fs to take the call. It
   * does what `runSync(route(...).steps())` does without the generators,
   * closures and argument spreading, which cost about 0.25 µs a call.
   */
  type Direct<A extends unknown[], R> = (a: A) => R | typeof NOT_MOUNTED;
  const kernel = kernelFs as unknown as Record<string, (...a: unknown[]) => unknown>;
  const kernelPromises = kernelFsp as unknown as Record<string, ((...a: unknown[]) => Promise<unknown>) | undefined>;
  function routed<A extends unknown[], R>(name: string, route: (...a: A) => Route<R> | undefined, direct?: Direct<A, R>) {
    const kernelSync = kernel[`${name}Sync`]!;
    // A call node:fs itself would refuse (a wrong type...) is node:fs's to refuse.
    const where = (a: A): Route<R> | undefined => {
      try {
        return route(...a);
      } catch (e) {
        if ((e as { code?: unknown }).code === 'ERR_INVALID_ARG_TYPE') return undefined;
        throw e;
      }
    };
    const fail = (e: unknown, r: Route<R>) => userError(e, r.path, r.dest);
    return {
      sync: (...a: A): R => {
        if (direct) {
          const v = direct(a);
          return v === NOT_MOUNTED ? (kernelSync(...a) as R) : v;
        }
        const r = where(a);
        if (!r) return kernelSync(...a) as R;
        try {
          return runSync(r.steps());
        } catch (e) {
          throw fail(e, r);
        }
      },
      async: async (...a: A): Promise<R> => {
        const r = where(a);
        if (!r) {
          const k = kernelPromises[name];
          if (k) return k(...a) as Promise<R>;
          return new Promise<R>((res, rej) => kernel[name]!(...a, (e: unknown, v: R) => (e ? rej(e) : res(v))));
        }
        try {
          return await runAsync(r.steps());
        } catch (e) {
          throw fail(e, r);
        }
      },
      /** node:fs's callback form: the callback is the last argument. */
      callback: (...args: unknown[]): void => {
        const cb = typeof args[args.length - 1] === 'function' ? (args.pop() as (...v: unknown[]) => void) : undefined;
        const a = args as A;
        const r = where(a);
        if (!r) {
          kernel[name]!(...args, ...(cb ? [cb] : []));
          return;
        }
        if (!cb && name !== 'close') throw Object.assign(new TypeError('The "cb" argument must be of type function. Received undefined'), { code: 'ERR_INVALID_ARG_TYPE' });
        runAsync(r.steps()).then(
          (v) => cb?.(null, v, ...(r.callbackExtra === undefined ? [] : [r.callbackExtra])),
          (e) => cb?.(fail(e, r)),
        );
      },
    };
  }
  /** An operation on a path. */
  const byPath = <A extends unknown[], R>(name: string, mounted: (r: Routed, ...a: A) => Steps<R>, direct?: (r: Routed, a: [PathLike, ...A]) => R) =>
    routed<[PathLike, ...A], R>(
      name,
      (p, ...a) => {
        const r = table.route(p);
        return r && { steps: () => mounted(r, ...a), path: p };
      },
      direct && directByPath(direct),
    );
  /** An operation on a descriptor (`direct`: its sync form, when it is one call). */
  const byFd = <A extends unknown[], R>(name: string, mounted: (f: OpenFile, ...a: A) => Steps<R>, extra?: (...a: A) => unknown, syscall = name, direct?: (f: OpenFile, a: [number, ...A]) => R) =>
    routed<[number, ...A], R>(
      name,
      (fd, ...a) => {
        const f = fileOf(fd, syscall);
        return f && { steps: () => mounted(f, ...a), callbackExtra: extra?.(...a) };
      },
      direct &&
        ((a) => {
          const f = fileOf(a[0], syscall);
          if (!f) return NOT_MOUNTED;
          try {
            return direct(f, a);
          } catch (e) {
            throw userError(e);
          }
        }),
    );
  /** A path operation's Direct form: routed as `where` routes, errors made as `fail` makes them. */
  function directByPath<A extends [PathLike, ...unknown[]], R>(direct: (r: Routed, a: A) => R): Direct<A, R> {
    return (a) => {
      let r: Routed | undefined;
      try {
        r = table.route(a[0]);
      } catch (e) {
        // A call node:fs itself would refuse (a wrong type...) is node:fs's to refuse.
        if ((e as { code?: unknown }).code === 'ERR_INVALID_ARG_TYPE') return NOT_MOUNTED;
        throw e;
      }
      if (!r) return NOT_MOUNTED;
      try {
        return direct(r, a);
      } catch (e) {
        throw userError(e, a[0]);
      }
    };
  }

  // --- descriptors ---------------------------------------------------------------

  const open = routed<[PathLike, (string | number)?, number?], number>(
    'open',
    (p, flags = 'r', mode = 0o666) => {
      const r = table.route(p);
      return r && { path: p, steps: () => (function* () { return addFd(r.mount, yield* call(r.mount, 'open', r.path, parseOpenFlags(flags), mode)); })() };
    },
    directByPath((r, [, flags = 'r', mode = 0o666]) => addFd(r.mount, onClient(r.mount, (c) => c.openSync(r.path, parseOpenFlags(flags), mode)))),
  );

  const close = byFd<[], void>(
    'close',
    function* (f) {
      files.delete(f.fd);
      yield* call(f.mount, 'close', f.handle);
    },
    undefined,
    'close',
    (f) => {
      files.delete(f.fd);
      onClient(f.mount, (c) => c.closeSync(f.handle));
    },
  );

  type ReadArgs = [bufferOrOptions?: NodeJS.ArrayBufferView | ReadOptions | null, offsetOrOptions?: number | ReadOptions | null, length?: number | null, position?: number | bigint | null];
  type ReadOptions = { buffer?: NodeJS.ArrayBufferView | undefined; offset?: number | null | undefined; length?: number | null | undefined; position?: number | bigint | null | undefined };
  /** read(fd, buffer, offset?, length?, position?), read(fd, buffer, options) or read(fd, options?), as node:fs. */
  const readArgs = (...[a, b, c, d]: ReadArgs): [Uint8Array, NodeJS.ArrayBufferView, number, number, number | null] => {
    let o: ReadOptions;
    if (a !== null && a !== undefined && ArrayBuffer.isView(a)) o = typeof b === 'object' && b !== null ? { ...b, buffer: a } : { buffer: a, offset: b as number | null | undefined, length: c, position: d };
    else o = (a ?? {}) as ReadOptions;
    const buffer = o.buffer ?? Buffer.alloc(16384);
    const view = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    const offset = o.offset ?? 0;
    const p = o.position;
    return [view, buffer, offset, o.length ?? view.byteLength - offset, p === null || p === undefined || p === -1 || p === -1n ? null : Number(p)];
  };
  const read = byFd<ReadArgs, number>(
    'read',
    (f, ...a) => {
      const [view, , offset, length, position] = readArgs(...a);
      return call(f.mount, 'read', f.handle, view, offset, length, position);
    },
    // node:fs's callback gets the buffer read into as its third argument.
    (...a) => readArgs(...a)[1],
    'read',
    (f, [, a, b, c, d]) => {
      const [view, , offset, length, position] = readArgs(a, b, c, d);
      return onClient(f.mount, (c) => c.readSync(f.handle, view, offset, length, position));
    },
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
    (data) => data,
    'write',
    (f, [, data, a, b, c]) => {
      const [view, offset, length, position] = writeArgs(data, a, b, c);
      return onClient(f.mount, (c) => c.writeSync(f.handle, view, offset, length, position));
    },
  );

  const fstat = byFd<[], IoStats | nodeFs.Stats>(
    'fstat',
    function* (f) {
      return new IoStats(yield* call(f.mount, 'fstat', f.handle));
    },
    undefined,
    'fstat',
    (f) => new IoStats(onClient(f.mount, (c) => c.fstatSync(f.handle))),
  );
  const ftruncate = byFd<[number?], void>(
    'ftruncate',
    (f, len = 0) => call(f.mount, 'ftruncate', f.handle, len),
  );
  const fchmod = byFd<[number | string], void>('fchmod', (f, mode) => call(f.mount, 'fchmod', f.handle, fileMode(mode)));
  const fchown = byFd<[number, number], void>('fchown', (f, uid, gid) => call(f.mount, 'fchown', f.handle, uid, gid));
  const futimes = byFd<[number | string | Date, number | string | Date], void>('futimes', (f, a, m) => call(f.mount, 'futimes', f.handle, toMs(a), toMs(m)), undefined, 'futime');
  const fsync = byFd<[], void>('fsync', (f) => call(f.mount, 'fsync', f.handle), undefined, 'fsync', (f) => onClient(f.mount, (c) => c.fsyncSync(f.handle)));
  const fdatasync = byFd<[], void>('fdatasync', (f) => call(f.mount, 'fdatasync', f.handle));

  type VecArgs = [buffers: readonly NodeJS.ArrayBufferView[], position?: number | null];
  const views = (buffers: unknown): Uint8Array[] => {
    if (!Array.isArray(buffers) || !buffers.every((b) => ArrayBuffer.isView(b))) {
      throw Object.assign(new TypeError('The "buffers" argument must be an instance of ArrayBufferView[]'), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    return (buffers as ArrayBufferView[]).map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
  };
  const vecPosition = (p: unknown): number | null => (typeof p === 'number' && p >= 0 ? p : null);
  /** readv: one read of the buffers' total length, then spread over them in order (a short read fills the first ones). */
  const readv = byFd<VecArgs, number>(
    'readv',
    function* (f, buffers, position) {
      const vs = views(buffers);
      const all = Buffer.allocUnsafe(vs.reduce((n, v) => n + v.byteLength, 0));
      const n = yield* call(f.mount, 'read', f.handle, all, 0, all.length, vecPosition(position));
      let at = 0;
      for (const v of vs) {
        if (at >= n) break;
        v.set(all.subarray(at, Math.min(n, at + v.byteLength)));
        at += v.byteLength;
      }
      return n;
    },
    (buffers) => buffers,
  );
  /** writev: the buffers joined, in one write (as one writev(2): all at one position, or appended). */
  const writev = byFd<VecArgs, number>(
    'writev',
    function* (f, buffers, position) {
      const all = Buffer.concat(views(buffers));
      return yield* call(f.mount, 'write', f.handle, all, 0, all.length, vecPosition(position));
    },
    (buffers) => buffers,
  );

  // --- whole files -------------------------------------------------------------------

  type FileRef = PathLike | number | IoFileHandle | nodeFs.promises.FileHandle;
  const fileRoute = <R>(ref: FileRef, syscall: string, onPath: (r: Routed) => Steps<R>, onFd: (f: OpenFile) => Steps<R>) => {
    const fd = typeof ref === 'number' ? ref : ref instanceof IoFileHandle ? ref.fd : undefined;
    if (fd !== undefined) {
      const f = fileOf(fd, syscall);
      return f && { steps: () => onFd(f) };
    }
    // node's own FileHandle (a kernel file), or anything node:fs should judge.
    if (typeof ref === 'object' && !(ref instanceof URL) && !Buffer.isBuffer(ref)) return undefined;
    const r = table.route(ref as PathLike);
    return r && { steps: () => onPath(r), path: ref as PathLike };
  };
  const decode = (b: Buffer, enc: Encoding) => (enc ? b.toString(enc) : b);

  const readFile = routed<[FileRef, EncodingOption?], Buffer | string>(
    'readFile',
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
  );

  const writeLike = (name: 'writeFile' | 'appendFile', fallbackFlag: string) =>
    routed<[FileRef, string | NodeJS.ArrayBufferView, EncodingOption?], void>(
      name,
      (ref, data, o) =>
        fileRoute(
          ref,
          'write',
          (r) => steps.writeFile(r.mount, r.path, bytes(data, encodingOf(o)), flagOf(o, fallbackFlag), modeOf(o)),
          (f) => steps.writeAll(f.mount, f.handle, bytes(data, encodingOf(o))),
        ),
    );
  const writeFile = writeLike('writeFile', 'w');
  const appendFile = writeLike('appendFile', 'a');

  // --- paths -------------------------------------------------------------------------

  type StatOptions = { bigint?: false; throwIfNoEntry?: boolean } | undefined;
  const statLike = (op: 'stat' | 'lstat') => {
    /** A miss the caller asked not to see is undefined; any other error is thrown. */
    const miss = (e: unknown, o: StatOptions): undefined => {
      const code = (e as { code?: unknown }).code;
      if (o?.throwIfNoEntry === false && (code === 'ENOENT' || (code === 'ENOTDIR' && throwIfNoEntryHidesNotDir(op)))) return undefined;
      throw e;
    };
    const o = byPath<[StatOptions?], IoStats | nodeFs.Stats | undefined>(
      op,
      function* (r, o) {
        try {
          return new IoStats(yield* call(r.mount, op, r.path));
        } catch (e) {
          return miss(e, o);
        }
      },
      (r, a) => {
        try {
          return new IoStats(onClient(r.mount, (c) => (op === 'stat' ? c.statSync(r.path) : c.lstatSync(r.path))));
        } catch (e) {
          return miss(e, a[1]);
        }
      },
    );
    const sync = o.sync;
    // A miss the caller asked not to be thrown costs no stack trace.
    o.sync = (p, options) => (options?.throwIfNoEntry === false ? quietly(() => sync(p, options)) : sync(p, options));
    return o;
  };
  const stat = statLike('stat');
  const lstat = statLike('lstat');

  type ReaddirOptions = BufferEncoding | { encoding?: BufferEncoding | null; withFileTypes?: boolean; recursive?: boolean } | null | undefined;
  const readdirRoute = (p: PathLike, o?: ReaddirOptions): Route<string[] | IoDirent[]> | undefined => {
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
  };
  const readdir = routed<[PathLike, ReaddirOptions?], string[] | IoDirent[] | nodeFs.Dirent[]>('readdir', readdirRoute);

  /**
   * opendir: a Dir over the directory's listing when opened (recursive:
   * the whole tree's, as readdir lists it); errors name syscall 'opendir'.
   */
  const opendir = routed<[PathLike, { recursive?: boolean; encoding?: string | null; bufferSize?: number }?], IoDir | nodeFs.Dir>('opendir', (p, o) => {
    const r = readdirRoute(p, { withFileTypes: true, recursive: o?.recursive === true });
    return (
      r && {
        path: p,
        steps: function* () {
          try {
            return new IoDir(pathString(p), (yield* r.steps()) as IoDirent[]);
          } catch (e) {
            if (e instanceof FsError) throw new FsError(e.code as never, 'opendir', e.path, e.dest);
            throw e;
          }
        },
      }
    );
  });

  type MkdirOptions = number | { recursive?: boolean; mode?: number } | undefined;
  const mkdir = byPath<[MkdirOptions?], string | undefined>('mkdir', 
    function* (r, o) {
      const mode = typeof o === 'number' ? o : (o?.mode ?? 0o777);
      if (typeof o === 'object' && o.recursive === true) {
        const first = yield* steps.mkdirRecursive(r.mount, r.path, mode);
        return first === undefined ? undefined : r.mount.point + (r.mount.point === '/' ? first.slice(1) : first);
      }
      yield* call(r.mount, 'mkdir', r.path, mode);
      return undefined;
    },
  );

  type RmOptions = { recursive?: boolean; force?: boolean } | undefined;
  const rm = byPath<[RmOptions?], void>('rm', 
    (r, o) => steps.rm(r.mount, r.path, o?.recursive === true, o?.force === true),
  );
  const rmdir = byPath<[], void>('rmdir', (r) => call(r.mount, 'rmdir', r.path));
  const unlink = byPath<[], void>('unlink', (r) => call(r.mount, 'unlink', r.path));
  const truncate = byPath<[number?], void>('truncate', (r, len = 0) => call(r.mount, 'truncate', r.path, len));
  const access = byPath<[number?], void>('access', (r, mode = constants.F_OK) => call(r.mount, 'access', r.path, mode));
  const chown = byPath<[number, number], void>('chown', (r, uid, gid) => call(r.mount, 'chown', r.path, uid, gid));
  const statfs = byPath<[], StatFsRecord | nodeFs.StatsFs>('statfs', (r) => call(r.mount, 'statfs', r.path));
  const chmod = byPath<[number | string], void>('chmod', (r, mode) => call(r.mount, 'chmod', r.path, fileMode(mode)));
  const utimes = byPath<[number | string | Date, number | string | Date], void>('utimes', 
    (r, a, m) => call(r.mount, 'utimes', r.path, toMs(a), toMs(m)),
  );
  const readlink = byPath<[options?: unknown], string | Buffer>('readlink', (r) => call(r.mount, 'readlink', r.path));
  const realpath = byPath<[options?: unknown], string | Buffer>('realpath', 
    function* (r) {
      const inner = yield* steps.realpath(r.mount, r.path);
      return inner === '/' ? r.mount.point : (r.mount.point === '/' ? '' : r.mount.point) + inner;
    },
  );
  const symlink = routed<[string, PathLike], void>(
    'symlink',
    (target, p) => {
      const r = table.route(p);
      return r && { path: target, dest: p, steps: () => call(r.mount, 'symlink', target, r.path) };
    },
  );

  /** rename and link: both paths under one mount, or both on the kernel path; EXDEV otherwise. */
  const twoPaths = (op: 'rename' | 'link') =>
    routed<[PathLike, PathLike], void>(
      op,
      (from, to) => {
        const [a, b] = [table.route(from), table.route(to)];
        if (!a && !b) return undefined;
        if (!a || !b || a.mount !== b.mount) {
          return { path: from, dest: to, steps: () => (function* (): Steps<void> { throw new FsError('EXDEV', op, pathString(from), pathString(to)); })() };
        }
        return { path: from, dest: to, steps: () => call(a.mount, op, a.path, b.path) };
      },
    );
  const rename = twoPaths('rename');
  const link = twoPaths('link');

  /**
   * copyFile: either end may be on a mount (or on another mount, or on the
   * host). The data is read whole, then written with the source's
   * permission bits; COPYFILE_EXCL refuses an existing destination, and a
   * forced clone (COPYFILE_FICLONE_FORCE) is ENOTSUP, as on a filesystem
   * without reflinks. Errors name both paths with syscall 'copyfile'.
   */
  const copyFile = routed<[PathLike, PathLike, number?], void>('copyFile', (from, to, mode = 0) => {
    const [a, b] = [table.route(from), table.route(to)];
    if (!a && !b) return undefined;
    const hostFrom = pathString(from);
    const hostTo = pathString(to);
    return {
      path: from,
      dest: to,
      steps: () =>
        (function* (): Steps<void> {
          try {
            const perm =
              (a ? (yield* call(a.mount, 'stat', a.path)).mode : (yield* host(() => kernelFs.statSync(hostFrom).mode, async () => (await kernelFsp.stat(hostFrom)).mode))) & 0o7777;
            // As libuv: the source is looked up before a forced clone is refused.
            if (mode & constants.COPYFILE_FICLONE_FORCE) throw new FsError('ENOTSUP', 'copyfile');
            const data = a ? yield* steps.readFile(a.mount, a.path) : yield* host(() => kernelFs.readFileSync(hostFrom), () => kernelFsp.readFile(hostFrom));
            const excl = (mode & constants.COPYFILE_EXCL) !== 0;
            if (b) {
              yield* steps.writeFile(b.mount, b.path, data, parseOpenFlags(excl ? 'wx' : 'w'), perm);
              yield* call(b.mount, 'chmod', b.path, perm);
            } else {
              const o = { flag: excl ? 'wx' : 'w', mode: perm };
              yield* host(
                () => (kernelFs.writeFileSync(hostTo, data, o), kernelFs.chmodSync(hostTo, perm)),
                async () => (await kernelFsp.writeFile(hostTo, data, o), await kernelFsp.chmod(hostTo, perm)),
              );
            }
          } catch (e) {
            const code = (e as { code?: unknown }).code;
            if (typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code)) throw e;
            throw new FsError(code as never, 'copyfile', hostFrom, hostTo);
          }
        })(),
    };
  });

  /**
   * mkdtemp: `prefix` plus six random characters, made with mode 0o700
   * (tried again on a name taken). Routed when the name it makes is under
   * a mount: `/mnt/pool/tmp-` is, and so is `/mnt/pool/` (a directory in
   * the mount's root), not the mount point `/mnt/pool` itself (a sibling).
   */
  const mkdtemp = routed<[string | Buffer | URL, EncodingOption?], string | Buffer>('mkdtemp', (prefix, o) => {
    if (typeof prefix !== 'string' || !table.route(`${prefix}XXXXXX`)) return undefined;
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    return {
      path: prefix,
      steps: () =>
        (function* (): Steps<string | Buffer> {
          for (let attempt = 0; ; attempt++) {
            let suffix = '';
            for (const b of randomBytes(6)) suffix += chars[b % chars.length];
            const r = table.route(prefix + suffix) as Routed;
            try {
              yield* call(r.mount, 'mkdir', r.path, 0o700);
              const wantsBuffer = (o as unknown) === 'buffer' || (o as { encoding?: unknown } | undefined)?.encoding === 'buffer';
              return wantsBuffer ? Buffer.from(prefix + suffix) : prefix + suffix;
            } catch (e) {
              if (hasCode(e, 'EEXIST') && attempt < 100) continue;
              const code = (e as { code?: unknown }).code;
              throw typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? new FsError(code as never, 'mkdtemp', r.path) : e;
            }
          }
        })(),
    };
  });

  const existsSync = (p: PathLike): boolean => {
    try {
      return stat.sync(p, { throwIfNoEntry: false }) !== undefined;
    } catch {
      return false;
    }
  };

  /**
   * cp / cpSync when the source or the destination is on a mount: node:fs's
   * copy algorithm over this library's routed functions (see cp.ts).
   */
  const cpFs = {
    ...({ stat, lstat, readlink, symlink, unlink, mkdir, copyFile, chmod, utimes, readdir } as unknown as Omit<CpFs, 'targetAsSeen' | 'targetToStore'>),
    targetAsSeen: (link: string, target: string) => {
      const r = table.route(link);
      return r && target.startsWith('/') ? (r.mount.point === '/' ? target : r.mount.point + (target === '/' ? '' : target)) : target;
    },
    targetToStore: (link: string, target: string) => {
      const [l, t] = [table.route(link), table.route(target)];
      return l && t && t.mount === l.mount ? t.path : target;
    },
  } satisfies CpFs;
  const cp = routed<[PathLike, PathLike, CpOptions?], void>('cp', (src, dest, o = {}) => {
    if (!table.route(src) && !table.route(dest)) return undefined;
    if (o.filter !== undefined && typeof o.filter !== 'function') {
      throw Object.assign(new TypeError('The "options.filter" property must be of type function.'), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    return { steps: () => cpSteps(cpFs, pathString(src), pathString(dest), o) };
  });

  // --- watching (polls: see watch.ts) ------------------------------------------------

  const missing = (e: unknown) => ['ENOENT', 'ENOTDIR'].includes((e as { code?: string }).code ?? '');
  const watchFs: WatchFs = {
    look: (p, follow) => ((follow ? stat : lstat).async(p, { throwIfNoEntry: false }) as Promise<IoStats | undefined>).catch((e) => (missing(e) ? undefined : Promise.reject(e))),
    lookSync: (p, follow) => {
      try {
        return (follow ? stat : lstat).sync(p, { throwIfNoEntry: false }) as IoStats | undefined;
      } catch (e) {
        if (missing(e)) return undefined;
        throw e;
      }
    },
    list: async (p) => ((await readdir.async(p, { withFileTypes: true })) as IoDirent[]).map((d) => ({ name: d.name, dir: d.isDirectory() })),
  };
  const statWatchers = new StatWatchers(watchFs);
  type WatchArg = WatchOptions | BufferEncoding | 'buffer' | undefined;
  const watchOptions = (o: WatchArg): WatchOptions => (typeof o === 'string' ? { encoding: o } : (o ?? {}));
  /** fs.watch: a polling watcher for a mounted path, node:fs's for any other. */
  function watch(p: PathLike, o?: WatchArg | ((event: string, filename: string | Buffer) => void), listener?: (event: string, filename: string | Buffer) => void) {
    if (typeof o === 'function') [o, listener] = [undefined, o];
    if (!table.route(p)) return kernelFs.watch(p, o as never, listener as never);
    return watchMounted(watchFs, pathString(p), watchOptions(o), listener);
  }
  type StatListener = (curr: IoStats, prev: IoStats) => void;
  /** fs.watchFile: polls a mounted path (node:fs polls too), node:fs's for any other. */
  function watchFile(p: PathLike, o: { interval?: number; persistent?: boolean; bigint?: boolean } | StatListener | undefined, listener?: StatListener) {
    if (typeof o === 'function') [o, listener] = [undefined, o];
    if (!table.route(p)) return kernelFs.watchFile(p, o as never, listener as never);
    if (typeof listener !== 'function') throw Object.assign(new TypeError('The "listener" argument must be of type function.'), { code: 'ERR_INVALID_ARG_TYPE' });
    return statWatchers.watch(resolvePath(pathString(p)), o ?? {}, listener);
  }
  function unwatchFile(p: PathLike, listener?: StatListener): void {
    if (!table.route(p)) return kernelFs.unwatchFile(p, listener as never);
    statWatchers.unwatch(resolvePath(pathString(p)), listener);
  }
  /** fs.promises.watch: the events of a mounted path as an async iterator (ends with an AbortError when `signal` aborts). */
  const watchAsync = (p: PathLike, o?: WatchArg) => (table.route(p) ? watchMountedAsync(watchFs, pathString(p), watchOptions(o)) : kernelFsp.watch(p, o as never));

  // --- the three APIs ----------------------------------------------------------------

  const ops = { open, close, read, write, readv, writev, fstat, ftruncate, fchmod, fchown, futimes, fsync, fdatasync, opendir, readFile, writeFile, appendFile, stat, lstat, readdir, mkdir, mkdtemp, rm, rmdir, unlink, truncate, access, chmod, chown, statfs, utimes, readlink, realpath, symlink, rename, link, copyFile, cp };
  type Ops = typeof ops;

  const fileOps: FileOps = {
    read: read.async,
    write: write.async,
    readv: readv.async,
    writev: writev.async,
    close: close.async,
    fstat: fstat.async as FileOps['fstat'],
    ftruncate: ftruncate.async,
    fchmod: fchmod.async,
    fchown: fchown.async,
    futimes: futimes.async,
    fsync: fsync.async,
    fdatasync: fdatasync.async,
    readFile: readFile.async,
    writeFile: writeFile.async,
    appendFile: appendFile.async,
  };

  const sync = Object.fromEntries(Object.entries(ops).map(([name, op]) => [`${name}Sync`, op.sync])) as { [K in keyof Ops as `${K}Sync`]: Ops[K]['sync'] };
  const callbacks = Object.fromEntries(Object.entries(ops).map(([name, op]) => [name, op.callback])) as { [K in keyof Ops]: (...args: unknown[]) => void };

  const promises = {
    ...(Object.fromEntries(Object.entries(ops).map(([name, op]) => [name, op.async])) as { [K in keyof Ops]: Ops[K]['async'] }),
    /** Opens a file: node:fs's FileHandle for a kernel path, an IoFileHandle for a mounted one. */
    open: async (p: PathLike, flags?: string | number, mode?: number): Promise<IoFileHandle | nodeFs.promises.FileHandle> =>
      table.route(p) ? new IoFileHandle(await open.async(p, flags, mode), fileOps) : kernelFsp.open(p, flags, mode),
    watch: watchAsync,
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
    watch,
    watchFile,
    unwatchFile,
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
