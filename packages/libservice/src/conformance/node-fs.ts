// node:fs itself as a libservice over a directory: the reference the
// conformance suite runs against to keep itself honest, and the oracle of
// its randomized comparisons. Deliberately naive: paths are joined to the
// root and handed to node:fs/promises unchecked (no confinement), errors
// are node:fs's own with the root cut from their paths.
import * as fsp from 'node:fs/promises';
import { constants } from 'node:fs';
import type { DirEntry, Libservice, RenameOptions, StatFsRecord, StatRecord } from '../contract.js';
import { asServiceError, FsError } from '../errors.js';
import { dirEntry, statFsRecord, statRecord } from '../records.js';

/** A libservice that is plain node:fs on `root` (unconfined: for tests only). */
export function nodeFsLibservice(root: string): Libservice {
  const handles = new Map<number, fsp.FileHandle>();
  let next = 1;
  // A path that is not a string goes to node:fs as it is, for node:fs's own TypeError.
  const at = (p: string) => (typeof p === 'string' ? root + p : p);
  const file = (h: number, syscall: string) => {
    const f = handles.get(h);
    if (!f) throw new FsError('EBADF', syscall);
    return f;
  };
  async function run<T>(syscall: string, path: string | undefined, dest: string | undefined, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw asServiceError(e, syscall, path, dest);
    }
  }
  return {
    open: (p, flags, mode = 0o666) =>
      run('open', p, undefined, async () => {
        const h = next++;
        handles.set(h, await fsp.open(at(p), flags, mode));
        return h;
      }),
    close: (h) =>
      run('close', undefined, undefined, async () => {
        const f = file(h, 'close');
        handles.delete(h);
        await f.close();
      }),
    read: (h, buffer, offset, length, position) =>
      run('read', undefined, undefined, async () => (await file(h, 'read').read(buffer, offset, length, position)).bytesRead),
    write: (h, buffer, offset, length, position) =>
      run('write', undefined, undefined, async () => (await file(h, 'write').write(buffer, offset, length, position)).bytesWritten),
    stat: (p): Promise<StatRecord> => run('stat', p, undefined, async () => statRecord(await fsp.stat(at(p)))),
    lstat: (p) => run('lstat', p, undefined, async () => statRecord(await fsp.lstat(at(p)))),
    fstat: (h) => run('fstat', undefined, undefined, async () => statRecord(await file(h, 'fstat').stat())),
    readdir: (p): Promise<DirEntry[]> =>
      run('scandir', p, undefined, async () => (await fsp.readdir(at(p), { withFileTypes: true })).map(dirEntry)),
    mkdir: (p, mode = 0o777) => run('mkdir', p, undefined, () => fsp.mkdir(at(p), mode).then(() => {})),
    rmdir: (p) => run('rmdir', p, undefined, () => fsp.rmdir(at(p))),
    unlink: (p) => run('unlink', p, undefined, () => fsp.unlink(at(p))),
    rename: (from, to, options: RenameOptions = {}) =>
      run('rename', from, to, async () => {
        // renameat2(RENAME_NOREPLACE) looks the source up before it refuses.
        if (options.noReplace === true) {
          await fsp.lstat(at(from));
          if (await fsp.lstat(at(to)).then(() => true, () => false)) throw new FsError('EEXIST', 'rename', from, to);
        }
        await fsp.rename(at(from), at(to));
      }),
    link: (existing, p) => run('link', existing, p, () => fsp.link(at(existing), at(p))),
    symlink: (target, p) => run('symlink', target, p, () => fsp.symlink(target, at(p))),
    readlink: (p) => run('readlink', p, undefined, () => fsp.readlink(at(p))),
    truncate: (p, length) => run('open', p, undefined, () => fsp.truncate(at(p), length)),
    ftruncate: (h, length) => run('ftruncate', undefined, undefined, () => file(h, 'ftruncate').truncate(length)),
    fsync: (h) => run('fsync', undefined, undefined, () => file(h, 'fsync').sync()),
    fdatasync: (h) => run('fdatasync', undefined, undefined, () => file(h, 'fdatasync').datasync()),
    chmod: (p, mode) => run('chmod', p, undefined, () => fsp.chmod(at(p), mode)),
    chown: (p, uid, gid) => run('chown', p, undefined, () => fsp.chown(at(p), uid, gid)),
    utimes: (p, a, m) => run('utime', p, undefined, () => fsp.utimes(at(p), a / 1000, m / 1000)),
    fchmod: (h, mode) => run('fchmod', undefined, undefined, () => file(h, 'fchmod').chmod(mode)),
    fchown: (h, uid, gid) => run('fchown', undefined, undefined, () => file(h, 'fchown').chown(uid, gid)),
    futimes: (h, a, m) => run('futime', undefined, undefined, () => file(h, 'futime').utimes(a / 1000, m / 1000)),
    access: (p, mode = constants.F_OK) => run('access', p, undefined, () => fsp.access(at(p), mode)),
    statfs: (p): Promise<StatFsRecord> => run('statfs', p, undefined, async () => statFsRecord(await fsp.statfs(at(p)))),
    unmount: async () => {
      const open = [...handles.values()];
      handles.clear();
      await Promise.all(open.map((f) => f.close().catch(() => {})));
    },
  };
}
