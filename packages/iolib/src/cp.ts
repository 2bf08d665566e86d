// fs.cp / fs.cpSync for trees with a side on a mount: node:fs's own copy
// algorithm (lib/internal/fs/cp, as Node 22 and later have it), step by step over the
// library's routed functions, so that it copies within a mount, between
// mounts and between a mount and the host alike. (Node 22 and later check
// cpSync's paths in C++ against the kernel, where a mounted path does not
// exist; node:fs's own cp is left to paths off every mount.)
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { host, type Steps } from './steps.js';

/** node:fs's cp options. */
export interface CpOptions {
  dereference?: boolean;
  errorOnExist?: boolean;
  filter?: (src: string, dest: string) => boolean | Promise<boolean>;
  force?: boolean;
  mode?: number;
  preserveTimestamps?: boolean;
  recursive?: boolean;
  verbatimSymlinks?: boolean;
}

/** What cp needs of a filesystem: each call in both forms (the library's routed functions). */
interface Stat {
  dev: number;
  ino: number;
  mode: number;
  atime: Date;
  mtime: Date;
  isDirectory(): boolean;
  isFile(): boolean;
  isSymbolicLink(): boolean;
  isSocket(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}
type Both<A extends unknown[], R> = { sync: (...a: A) => R; async: (...a: A) => Promise<R> };
export interface CpFs {
  stat: Both<[string], Stat>;
  lstat: Both<[string], Stat>;
  readlink: Both<[string], string>;
  symlink: Both<[string, string], void>;
  unlink: Both<[string], void>;
  mkdir: Both<[string, { recursive: boolean }?], unknown>;
  copyFile: Both<[string, string, number], void>;
  chmod: Both<[string, number], void>;
  utimes: Both<[string, Date, Date], void>;
  readdir: Both<[string], string[]>;
  /**
   * A symlink's target as the caller names it: an absolute target read from
   * a mount is absolute within its instance (mount point + target).
   */
  targetAsSeen(link: string, target: string): string;
  /** The target to store in a symlink made at `link`: within its mount's instance when it points into that mount. */
  targetToStore(link: string, target: string): string;
}

/** node:fs's cp errors: a code, the system call 'cp', the path, and node:fs's message. */
function cpError(code: string, prefix: string, errnoCode: string, message: string, path: string): Error {
  return Object.assign(new Error(`${prefix}: cp returned ${errnoCode} (${message}) ${path}`), { code, syscall: 'cp', path, info: { message, path, syscall: 'cp', code: errnoCode } });
}
const einval = (message: string, path: string) => cpError('ERR_FS_CP_EINVAL', 'Invalid src or dest', 'EINVAL', message, path);

/** Runs one routed call in the form the runner asks for. */
function* run<A extends unknown[], R>(op: Both<A, R>, ...a: A): Steps<R> {
  return yield* host(() => op.sync(...a), () => op.async(...a));
}

/** Whether `dest` is `src` or inside it (by path text, as node:fs checks). */
function isSrcSubdir(src: string, dest: string): boolean {
  const s = resolve(src).split(sep).filter(Boolean);
  const d = resolve(dest).split(sep).filter(Boolean);
  return s.every((c, i) => d[i] === c);
}

const areIdentical = (a: Stat, b: Stat) => b.ino !== 0 && b.dev !== 0 && b.ino === a.ino && b.dev === a.dev;

/** The filter's word: cpSync takes a boolean only (as node:fs), cp awaits a promise. */
function* filtered(src: string, dest: string, o: CpOptions): Steps<boolean> {
  const filter = o.filter;
  if (!filter) return true;
  return yield* host(
    () => {
      const keep = filter(src, dest);
      if (keep instanceof Promise) throw Object.assign(new TypeError('Expected a boolean to be returned from the "filter" function but got an instance of Promise.'), { code: 'ERR_INVALID_RETURN_VALUE' });
      return keep;
    },
    async () => await filter(src, dest),
  );
}

function* statOrNull(op: CpFs['stat'], p: string): Steps<Stat | null> {
  try {
    return yield* run(op, p);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return null;
    throw e;
  }
}

/** checkPaths: the filter (null: skipped), then the two stats and what they forbid. */
function* checkPaths(fs: CpFs, src: string, dest: string, o: CpOptions): Steps<{ srcStat: Stat; destStat: Stat | null } | null> {
  if (!(yield* filtered(src, dest, o))) return null;
  // Both sides by the same call, as node:fs: a symlink at dest is one, not its target.
  const statOf = o.dereference ? fs.stat : fs.lstat;
  const srcStat = yield* run(statOf, src);
  const destStat = yield* statOrNull(statOf, dest);
  if (destStat) {
    if (areIdentical(srcStat, destStat)) throw einval('src and dest cannot be the same', dest);
    if (srcStat.isDirectory() && !destStat.isDirectory()) {
      throw cpError('ERR_FS_CP_DIR_TO_NON_DIR', 'Cannot overwrite non-directory with directory', 'EISDIR', `cannot overwrite non-directory ${dest} with directory ${src}`, dest);
    }
    if (!srcStat.isDirectory() && destStat.isDirectory()) {
      throw cpError('ERR_FS_CP_NON_DIR_TO_DIR', 'Cannot overwrite directory with non-directory', 'ENOTDIR', `cannot overwrite directory ${dest} with non-directory ${src}`, dest);
    }
  }
  if (srcStat.isDirectory() && isSrcSubdir(src, dest)) throw einval(`cannot copy ${src} to a subdirectory of self ${dest}`, dest);
  return { srcStat, destStat };
}

/**
 * node:fs's checkParentPaths: no directory above `dest` (up to src's
 * parent) may be src itself, reached by another path (a symlink, another
 * mount point of the same instance): the copy would never end.
 */
function* checkParentPaths(fs: CpFs, src: string, srcStat: Stat, dest: string): Steps<void> {
  const srcParent = resolve(dirname(src));
  for (let parent = resolve(dirname(dest)); parent !== srcParent && parent !== dirname(parent); parent = dirname(parent)) {
    const st = yield* statOrNull(fs.stat, parent);
    if (st === null) return;
    if (areIdentical(srcStat, st)) throw einval(`cannot copy ${src} to a subdirectory of self ${dest}`, dest);
  }
}

/** Copies `src` to `dest` as fs.cpSync / fs.promises.cp do. */
export function* cp(fs: CpFs, src: string, dest: string, o: CpOptions): Steps<void> {
  const checked = yield* checkPaths(fs, src, dest, o);
  if (!checked) return;
  yield* checkParentPaths(fs, src, checked.srcStat, dest);
  const parent = dirname(dest);
  if ((yield* statOrNull(fs.stat, parent)) === null) yield* run(fs.mkdir, parent, { recursive: true });
  yield* copyEntry(fs, checked.srcStat, checked.destStat, src, dest, o);
}

/** Copies one entry whose stats checkPaths took (the source's is not taken again). */
function* copyEntry(fs: CpFs, srcStat: Stat, destStat: Stat | null, src: string, dest: string, o: CpOptions): Steps<void> {
  if (srcStat.isDirectory()) {
    if (!o.recursive) throw cpError('ERR_FS_EISDIR', 'Path is a directory', 'EISDIR', `Recursive option is required to copy a directory: ${src}`, src);
    if (!destStat) yield* run(fs.mkdir, dest);
    for (const name of yield* run(fs.readdir, src)) {
      const [s, d] = [join(src, name), join(dest, name)];
      const c = yield* checkPaths(fs, s, d, o);
      if (c) yield* copyEntry(fs, c.srcStat, c.destStat, s, d, o);
    }
    if (!destStat) yield* run(fs.chmod, dest, srcStat.mode);
  } else if (srcStat.isFile() || srcStat.isCharacterDevice() || srcStat.isBlockDevice()) {
    if (destStat) {
      if (o.force === false) {
        if (o.errorOnExist) throw cpError('ERR_FS_CP_EEXIST', 'Target already exists', 'EEXIST', `${dest} already exists`, dest);
        return;
      }
      yield* run(fs.unlink, dest);
    }
    yield* run(fs.copyFile, src, dest, o.mode ?? 0);
    if (o.preserveTimestamps) {
      // A read-only file gets its owner's write bit while its times are set.
      if ((srcStat.mode & 0o200) === 0) yield* run(fs.chmod, dest, srcStat.mode | 0o200);
      const now = yield* run(fs.stat, src);
      yield* run(fs.utimes, dest, now.atime, now.mtime);
    }
    yield* run(fs.chmod, dest, srcStat.mode);
  } else if (srcStat.isSymbolicLink()) {
    // Targets compared and resolved as the caller names paths, stored as
    // the link's own filesystem names them.
    const text = yield* run(fs.readlink, src);
    let target = fs.targetAsSeen(src, text);
    if (!o.verbatimSymlinks && !isAbsolute(target)) target = resolve(dirname(src), target);
    const stored = o.verbatimSymlinks ? text : fs.targetToStore(dest, target);
    if (!destStat) return yield* run(fs.symlink, stored, dest);
    let destTarget: string;
    try {
      destTarget = fs.targetAsSeen(dest, yield* run(fs.readlink, dest));
    } catch (e) {
      // dest is no symlink: replaced by one.
      if ((e as { code?: string }).code === 'EINVAL' || (e as { code?: string }).code === 'UNKNOWN') return yield* run(fs.symlink, stored, dest);
      throw e;
    }
    if (!isAbsolute(destTarget)) destTarget = resolve(dirname(dest), destTarget);
    // Only a link to a directory can lead into itself (Node 22 and later;
    // Node 20 refused to copy a link onto an equal one).
    if ((yield* statOrNull(fs.stat, src))?.isDirectory() && isSrcSubdir(target, destTarget)) {
      throw einval(`cannot copy ${target} to a subdirectory of self ${destTarget}`, dest);
    }
    if ((yield* run(fs.stat, dest)).isDirectory() && isSrcSubdir(destTarget, target)) {
      throw cpError('ERR_FS_CP_SYMLINK_TO_SUBDIRECTORY', 'Cannot overwrite symlink in subdirectory of self', 'EINVAL', `cannot overwrite ${destTarget} with ${target}`, dest);
    }
    yield* run(fs.unlink, dest);
    yield* run(fs.symlink, stored, dest);
  } else if (srcStat.isSocket()) {
    throw cpError('ERR_FS_CP_SOCKET', 'Cannot copy a socket file', 'EINVAL', `cannot copy a socket file: ${dest}`, dest);
  } else if (srcStat.isFIFO()) {
    throw cpError('ERR_FS_CP_FIFO_PIPE', 'Cannot copy a FIFO pipe', 'EINVAL', `cannot copy a FIFO pipe: ${dest}`, dest);
  } else {
    throw cpError('ERR_FS_CP_UNKNOWN', 'Cannot copy an unknown file type', 'EINVAL', `cannot copy an unknown file type: ${dest}`, dest);
  }
}
