// The local-directory libservice: the embedded default backend. It serves a
// host directory, and every path stays confined to it, as if the directory
// were the root of its own filesystem (openat2's RESOLVE_IN_ROOT semantics):
// '..' stops at the root, absolute symlinks resolve from the root, and
// symlinks planted in the tree cannot lead out of it.
//
// How: every path is resolved here, one component below the root at a time
// with lstat (and readlink for a symlink), and the host path handed to the
// system call has no symlink left in it. The lstat of the final component
// doubles as the answer of stat and lstat, so a stat of '/f' is one system
// call, as on the kernel path (realpath(3) would lstat the root's own
// components too, and then the call itself). Node has no openat2;
// the window that remains is a concurrent rename of a directory of the
// service into a symlink between our resolution and the call (another
// process writing the same tree). The final component is opened with
// O_NOFOLLOW whenever it was checked, so a symlink swapped in there fails
// with ELOOP instead of being followed. README.md says the same to users.
import * as fs from 'node:fs';
import { z } from 'zod';
import { checkHandle, checkIo, checkNumber, parseOptions, pathTail, splitPath } from './arguments.js';
import type { DirEntry, Libservice, RenameOptions, StatFsRecord, StatRecord } from './contract.js';
import { asServiceError, FsError, hasCode } from './errors.js';
import { dirEntry, statFsRecord, statRecord } from './records.js';
import { inlineSyscalls, threadpoolSyscalls, type Syscalls } from './syscalls.js';

const { O_NOFOLLOW, O_CREAT, O_EXCL } = fs.constants;

/** How many symlinks one path may pass through (Linux's MAXSYMLINKS). */
export const MAX_SYMLINKS = 40;

const LocalOptions = z.strictObject({
  /** The host directory to serve. */
  root: z.string().min(1),
  /** How many handles may be open at once; one more open fails with EMFILE. */
  maxHandles: z.number().int().min(1).max(1 << 20).default(65_536),
  /**
   * 'inline' (default): system calls run on the calling thread, ~2 µs each
   * on cached data; 'threadpool': through libuv's pool (~55 µs each here),
   * for an event loop that must never block on a slow filesystem.
   */
  syscalls: z.enum(['inline', 'threadpool']).default('inline'),
});
export type LocalLibserviceOptions = z.input<typeof LocalOptions>;

interface OpenFile {
  fd: number;
  path: string;
}

/** A libservice serving a host directory, confined to it. */
export class LocalLibservice implements Libservice {
  readonly #root: string;
  readonly #maxHandles: number;
  readonly #sys: Syscalls;
  readonly #handles = new Map<number, OpenFile>();
  readonly #unmountListeners: (() => void)[] = [];
  #nextHandle = 1;
  #unmounted = false;

  private constructor(root: string, maxHandles: number, sys: Syscalls) {
    this.#root = root;
    this.#maxHandles = maxHandles;
    this.#sys = sys;
  }

  /** Serves `options.root`, which must be an existing directory. */
  static async create(options: LocalLibserviceOptions): Promise<LocalLibservice> {
    const o = parseOptions(LocalOptions, options, 'LocalLibservice options');
    let root: string;
    try {
      root = await fs.promises.realpath(o.root);
      if (!(await fs.promises.stat(root)).isDirectory()) throw new FsError('ENOTDIR', 'scandir', o.root);
    } catch (e) {
      throw asServiceError(e, 'scandir', o.root);
    }
    return new LocalLibservice(root === '/' ? '' : root, o.maxHandles, o.syscalls === 'inline' ? inlineSyscalls : threadpoolSyscalls);
  }

  /** The host directory served (resolved). */
  get root(): string {
    return this.#root || '/';
  }

  /** How many handles may be open at once (EMFILE beyond). */
  get maxHandles(): number {
    return this.#maxHandles;
  }

  /** Where system calls run: 'inline' (the calling thread) or 'threadpool'. */
  get syscalls(): 'inline' | 'threadpool' {
    return this.#sys === inlineSyscalls ? 'inline' : 'threadpool';
  }

  /**
   * Calls `listener` once when {@link unmount} begins (at once if it has).
   * For hosts that also serve the directory by other means (the I/O
   * service answers some requests natively): they stop when this does.
   * Returns a function that removes the listener.
   */
  onUnmount(listener: () => void): () => void {
    if (this.#unmounted) {
      listener();
      return () => {};
    }
    this.#unmountListeners.push(listener);
    return () => {
      const i = this.#unmountListeners.indexOf(listener);
      if (i >= 0) this.#unmountListeners.splice(i, 1);
    };
  }

  // --- path resolution -----------------------------------------------------

  /**
   * The host path for a service path, with every symlink resolved beneath
   * the root except, when `follow` is false, the final component. Says
   * whether the final component was checked to be no symlink (or absent),
   * and its attributes when the check found it.
   */
  async #resolve(path: string, syscall: string, follow: boolean, entry = false): Promise<{ host: string; checked: boolean; st?: fs.Stats }> {
    if (this.#unmounted) throw new FsError('ENOTCONN', syscall, path);
    const queue = splitPath(path);
    // A path ending in '/' or '/.' names a directory: a lookup follows a
    // final symlink for it, so resolve that here too, then hand the ending
    // on for the kernel's own rules (ENOTDIR, EISDIR, EINVAL). A call that
    // makes or removes the entry (`entry`: mkdir, rmdir, unlink, rename,
    // the new name of link and symlink) takes a final symlink before a
    // '/' as the entry itself, and so does the kernel with the ending.
    const tail = pathTail(path);
    const suffix = tail === '/' ? '/' : tail === '.' ? '/.' : '';
    if (tail !== '' && !(entry && tail === '/')) follow = true;
    const stack: string[] = [];
    let links = 0;
    let checked = queue.length === 0;
    let st: fs.Stats | undefined;
    while (queue.length > 0) {
      const name = queue.shift() as string;
      if (name === '..') {
        // '..' of a file is ENOTDIR, as the kernel has it (popping it would climb anyway).
        if (st !== undefined && !st.isDirectory()) throw new FsError('ENOTDIR', syscall, path);
        stack.pop(); // at the root, '..' is the root
        checked = queue.length === 0;
        // What was looked up last is not what the path names now.
        st = undefined;
        continue;
      }
      const last = queue.length === 0;
      stack.push(name);
      if (last && !follow) break;
      const host = this.#root + '/' + stack.join('/');
      try {
        st = await this.#sys.lstat(host);
      } catch (e) {
        st = undefined;
        if (hasCode(e, 'ENOENT') || hasCode(e, 'ENOTDIR')) {
          // The system call will fail the same way; '..' after a missing
          // component cannot climb anywhere the kernel would not refuse.
          checked = last;
          stack.push(...queue);
          break;
        }
        throw asServiceError(e, syscall, path);
      }
      if (!st.isSymbolicLink()) {
        checked = last;
        continue;
      }
      if (++links > MAX_SYMLINKS) throw new FsError('ELOOP', syscall, path);
      stack.pop();
      st = undefined;
      const target = await this.#sys.readlink(host);
      if (target.startsWith('/')) stack.length = 0;
      queue.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
      checked = queue.length === 0;
    }
    const host = (stack.length === 0 ? this.#root || '/' : this.#root + '/' + stack.join('/')) + (stack.length === 0 ? '' : suffix);
    // With an ending, the kernel still has its say (a file with '/' is ENOTDIR).
    return st !== undefined && checked && suffix === '' ? { host, checked, st } : { host, checked };
  }

  async #host(path: string, syscall: string, follow: boolean, entry = false): Promise<string> {
    return (await this.#resolve(path, syscall, follow, entry)).host;
  }

  /**
   * The host paths of a two-path call. When the second cannot be resolved
   * (ELOOP...), an error of the first wins, as the kernel looks the first up
   * before the second: link(2) the whole source, rename(2) its directory.
   */
  async #hostPair(from: string, to: string, syscall: 'rename' | 'link', sourceFirst: boolean): Promise<[string, string]> {
    const src = await this.#host(from, syscall, false, syscall === 'rename');
    const source = syscall === 'link' || sourceFirst ? src : src.slice(0, src.lastIndexOf('/')) || '/';
    const checkSource = async () => {
      const st = await this.#sys.lstat(source).catch((e) => {
        throw asServiceError(e, syscall, from, to);
      });
      if (source !== src && !st.isDirectory()) throw new FsError('ENOTDIR', syscall, from, to);
    };
    if (sourceFirst) await checkSource();
    try {
      return [src, await this.#host(to, syscall, false, true)];
    } catch (e) {
      await checkSource();
      throw asServiceError(e, syscall, from, to);
    }
  }

  #file(handle: number, syscall: string): OpenFile {
    const f = this.#handles.get(checkHandle(handle));
    if (!f) throw new FsError('EBADF', syscall);
    return f;
  }

  // --- the contract ----------------------------------------------------------

  async open(path: string, flags: number, mode = 0o666): Promise<number> {
    checkNumber(flags, 'flags');
    checkNumber(mode, 'mode');
    if (this.#handles.size >= this.#maxHandles) throw new FsError('EMFILE', 'open', path);
    const follow = (flags & O_NOFOLLOW) === 0 && (flags & (O_CREAT | O_EXCL)) !== (O_CREAT | O_EXCL);
    const { host, checked } = await this.#resolve(path, 'open', follow);
    const fd = await this.#sys.open(host, checked ? flags | O_NOFOLLOW : flags, mode).catch((e) => {
      throw asServiceError(e, 'open', path);
    });
    if (this.#unmounted) {
      this.#sys.close(fd).catch(() => {});
      throw new FsError('ENOTCONN', 'open', path);
    }
    const handle = this.#nextHandle++;
    this.#handles.set(handle, { fd, path });
    return handle;
  }

  async close(handle: number): Promise<void> {
    const f = this.#file(handle, 'close');
    this.#handles.delete(handle);
    await this.#sys.close(f.fd).catch((e) => {
      throw asServiceError(e, 'close');
    });
  }

  async read(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number> {
    checkIo(buffer, offset, length, position);
    const f = this.#file(handle, 'read');
    return this.#sys.read(f.fd, buffer, offset, length, position).catch((e) => {
      throw asServiceError(e, 'read');
    });
  }

  async write(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number> {
    checkIo(buffer, offset, length, position);
    const f = this.#file(handle, 'write');
    return this.#sys.write(f.fd, buffer, offset, length, position).catch((e) => {
      throw asServiceError(e, 'write');
    });
  }

  async stat(path: string): Promise<StatRecord> {
    const r = await this.#resolve(path, 'stat', true);
    if (r.st) return statRecord(r.st);
    return this.#sys.stat(r.host).then(statRecord, (e) => {
      throw asServiceError(e, 'stat', path);
    });
  }

  async lstat(path: string): Promise<StatRecord> {
    return this.#pathOp('lstat', path, false, (h) => this.#sys.lstat(h)).then(statRecord);
  }

  async fstat(handle: number): Promise<StatRecord> {
    const f = this.#file(handle, 'fstat');
    return this.#sys
      .fstat(f.fd)
      .then(statRecord)
      .catch((e) => {
        throw asServiceError(e, 'fstat');
      });
  }

  async readdir(path: string): Promise<DirEntry[]> {
    const entries = await this.#pathOp('scandir', path, true, (h) => this.#sys.readdir(h));
    return entries.map(dirEntry);
  }

  async mkdir(path: string, mode = 0o777): Promise<void> {
    checkNumber(mode, 'mode');
    await this.#pathOp('mkdir', path, false, (h) => this.#sys.mkdir(h, mode), true);
  }

  async rmdir(path: string): Promise<void> {
    const tail = pathTail(path);
    if (tail === '.') throw new FsError('EINVAL', 'rmdir', path);
    if (tail === '..') throw new FsError('ENOTEMPTY', 'rmdir', path);
    await this.#pathOp('rmdir', path, false, (h) => {
      // '/..' and the like name the root: it is never removed.
      if (h === (this.#root || '/')) throw new FsError('EBUSY', 'rmdir', path);
      return this.#sys.rmdir(h);
    }, true);
  }

  async unlink(path: string): Promise<void> {
    await this.#pathOp('unlink', path, false, (h) => this.#sys.unlink(h), true);
  }

  async rename(from: string, to: string, options: RenameOptions = {}): Promise<void> {
    // Node has no renameat2: for noReplace, the source is looked up, then
    // the destination, then renamed (a window where another writer may
    // create the destination; README.md says so).
    const noReplace = options.noReplace === true;
    if (['.', '..'].includes(pathTail(from)) || ['.', '..'].includes(pathTail(to))) throw new FsError('EBUSY', 'rename', from, to);
    const [src, dst] = await this.#hostPair(from, to, 'rename', noReplace);
    if (src === (this.#root || '/') || dst === (this.#root || '/')) throw new FsError('EBUSY', 'rename', from, to);
    try {
      if (noReplace) {
        const exists = await this.#sys.lstat(dst).then(
          () => true,
          (e) => (hasCode(e, 'ENOENT') ? false : Promise.reject(e)),
        );
        if (exists) throw new FsError('EEXIST', 'rename', from, to);
      }
      await this.#sys.rename(src, dst);
    } catch (e) {
      throw asServiceError(e, 'rename', from, to);
    }
  }

  async link(existing: string, path: string): Promise<void> {
    const [src, dst] = await this.#hostPair(existing, path, 'link', false);
    await this.#sys.link(src, dst).catch((e) => {
      throw asServiceError(e, 'link', existing, path);
    });
  }

  async symlink(target: string, path: string): Promise<void> {
    if (typeof target !== 'string' || target.includes('\0')) splitPath(target, 'target');
    const dst = await this.#host(path, 'symlink', false, true);
    await this.#sys.symlink(target, dst).catch((e) => {
      throw asServiceError(e, 'symlink', target, path);
    });
  }

  async readlink(path: string): Promise<string> {
    return this.#pathOp('readlink', path, false, (h) => this.#sys.readlink(h));
  }

  async truncate(path: string, length: number): Promise<void> {
    checkNumber(length, 'length');
    await this.#pathOp('open', path, true, (h) => this.#sys.truncate(h, length));
  }

  async ftruncate(handle: number, length: number): Promise<void> {
    checkNumber(length, 'length');
    const f = this.#file(handle, 'ftruncate');
    await this.#sys.ftruncate(f.fd, length).catch((e) => {
      throw asServiceError(e, 'ftruncate');
    });
  }

  async fsync(handle: number): Promise<void> {
    const f = this.#file(handle, 'fsync');
    await this.#sys.fsync(f.fd).catch((e) => {
      throw asServiceError(e, 'fsync');
    });
  }

  async fdatasync(handle: number): Promise<void> {
    const f = this.#file(handle, 'fdatasync');
    await this.#sys.fdatasync(f.fd).catch((e) => {
      throw asServiceError(e, 'fdatasync');
    });
  }

  async chmod(path: string, mode: number): Promise<void> {
    checkNumber(mode, 'mode');
    await this.#pathOp('chmod', path, true, (h) => this.#sys.chmod(h, mode));
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    checkNumber(uid, 'uid');
    checkNumber(gid, 'gid');
    await this.#pathOp('chown', path, true, (h) => this.#sys.chown(h, uid, gid));
  }

  async utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    await this.#pathOp('utime', path, true, (h) => this.#sys.utimes(h, atimeMs / 1000, mtimeMs / 1000));
  }

  async fchmod(handle: number, mode: number): Promise<void> {
    checkNumber(mode, 'mode');
    const f = this.#file(handle, 'fchmod');
    await this.#sys.fchmod(f.fd, mode).catch((e) => {
      throw asServiceError(e, 'fchmod');
    });
  }

  async fchown(handle: number, uid: number, gid: number): Promise<void> {
    checkNumber(uid, 'uid');
    checkNumber(gid, 'gid');
    const f = this.#file(handle, 'fchown');
    await this.#sys.fchown(f.fd, uid, gid).catch((e) => {
      throw asServiceError(e, 'fchown');
    });
  }

  async futimes(handle: number, atimeMs: number, mtimeMs: number): Promise<void> {
    const f = this.#file(handle, 'futime');
    // As the native end answers (node:fs would throw a TypeError).
    if (!Number.isFinite(atimeMs) || !Number.isFinite(mtimeMs)) throw new FsError('EINVAL', 'futime');
    await this.#sys.futimes(f.fd, atimeMs / 1000, mtimeMs / 1000).catch((e) => {
      throw asServiceError(e, 'futime');
    });
  }

  async access(path: string, mode: number = fs.constants.F_OK): Promise<void> {
    checkNumber(mode, 'mode');
    await this.#pathOp('access', path, true, (h) => this.#sys.access(h, mode));
  }

  async statfs(path: string): Promise<StatFsRecord> {
    return this.#pathOp('statfs', path, true, (h) => this.#sys.statfs(h)).then(statFsRecord);
  }

  async unmount(): Promise<void> {
    if (!this.#unmounted) for (const l of this.#unmountListeners.splice(0)) l();
    this.#unmounted = true;
    const open = [...this.#handles.values()];
    this.#handles.clear();
    await Promise.all(open.map((f) => this.#sys.close(f.fd).catch(() => {})));
  }

  async #pathOp<T>(syscall: string, path: string, follow: boolean, op: (host: string) => Promise<T>, entry = false): Promise<T> {
    const host = await this.#host(path, syscall, follow, entry);
    try {
      return await op(host);
    } catch (e) {
      throw asServiceError(e, syscall, path);
    }
  }
}
