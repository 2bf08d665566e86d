// A union of libservices: one writable upper branch over read-only lower
// branches, top first (a container's writable layer over its image's
// layers). Derived in spirit from overlayfs and unionfs-fuse:
//
// - A lower file or directory is copied up (content, mode, owner, times;
//   missing parent directories first) before anything changes it.
// - A removed lower entry leaves a whiteout `.wh.NAME` in the upper branch; a
//   directory made where a lower one was removed is marked opaque
//   (`.wh..wh..opq`). These are the OCI layer markers, so an unpacked OCI
//   layer is a lower branch as it is. Markers never show and cannot be opened.
// - Paths are resolved here, one component at a time, symlinks included
//   (a lower symlink may point into another layer), so the branches only
//   ever see paths without symlinks in their directories.
// - Renaming a directory with lower content copies its merged view into a
//   hidden work directory of the upper branch, renames that into place (the
//   new name appears at once, whole), then removes the old name: its cost is
//   a copy of the directory's lower files; nothing stale is left behind.
//   Upper-only directories and all files rename as the upper branch does.
//
// Changes take turns (one mutex per union); reads run concurrently.
import {
  EntryType,
  FsError,
  MAX_SYMLINKS,
  asServiceError,
  checkHandle,
  checkNumber,
  hasCode,
  opensForChange,
  parseOptions,
  pathTail,
  splitPath,
  isLibservice,
} from '@polytropon/libservice';
import type { DirEntry, Libservice, PosixCode, RenameOptions, StatFsRecord, StatRecord } from '@polytropon/libservice';
import { constants } from 'node:fs';
import { z } from 'zod';
import { LowerView, type LowerEntry } from './lower.js';
import { baseName, isMarker, join, OPAQUE, parentOf, WHITEOUT_PREFIX, whitedOut, workName } from './markers.js';
import { Mutex } from './mutex.js';
import { UpperBranch } from './upper.js';

const { O_CREAT, O_EXCL, O_NOFOLLOW, O_TRUNC, O_WRONLY } = constants;
const COPY_CHUNK = 1 << 20;

const Branch = z.custom<Libservice>(isLibservice, { message: 'must be a libservice (an object with the Libservice methods)' });

const UnionOptions = z.strictObject({
  /** The writable branch: every change lands here. */
  upper: Branch,
  /** The read-only branches, top first. They must not change while the union is in use. */
  lowers: z.array(Branch).max(1024).default([]),
  /** How many directory listings to keep cached, of each of the upper branch and the merged lower ones (0: none). */
  cacheDirectories: z.number().int().min(0).max(1 << 24).default(16_384),
  /** How many handles may be open at once; one more open fails with EMFILE. */
  maxHandles: z.number().int().min(1).max(1 << 20).default(65_536),
});
export type UnionLibserviceOptions = z.input<typeof UnionOptions>;

/** What the walk knows of a directory on the way. */
interface Dir {
  path: string;
  /** The directory exists in the upper branch. */
  upper: boolean;
  /** Lower branches contribute to its listing (not opaque, not whited out). */
  lowers: boolean;
}

/** A resolved path: its canonical form, and what (if anything) is there. */
interface Node {
  path: string;
  parent: Dir;
  name: string;
  /** null: nothing of this name (the parent exists). */
  type: EntryType | null;
  /** The entry is in the upper branch (else in lower branch `layer`). */
  upper: boolean;
  layer: number;
  /** A lower entry of this name is visible under the parent: removing the name needs a whiteout. */
  lowerHas: boolean;
  /** A whiteout hides a lower entry of this name. */
  whiteout: boolean;
  /** For a directory: its view as a directory. */
  dir: Dir | null;
}

interface OpenFile {
  branch: Libservice;
  handle: number;
  /** Where the union found it at open (symlinks followed): fchmod and co. of a lower file copy it up from there. */
  path: string;
}

function fail(code: PosixCode, syscall: string, path?: string, dest?: string): never {
  throw new FsError(code, syscall, path, dest);
}

/** A libservice that is the union of an upper branch over lower branches. */
export class UnionLibservice implements Libservice {
  readonly #upper: UpperBranch;
  readonly #lower: LowerView;
  readonly #maxHandles: number;
  readonly #handles = new Map<number, OpenFile>();
  readonly #changes = new Mutex();
  #nextHandle = 1;
  #rootLowers = true;
  #unmounted = false;

  private constructor(o: z.output<typeof UnionOptions>) {
    this.#upper = new UpperBranch(o.upper, o.cacheDirectories);
    this.#lower = new LowerView(o.lowers, o.cacheDirectories);
    this.#maxHandles = o.maxHandles;
  }

  /** A union of `options.upper` over `options.lowers` (top first). */
  static async create(options: UnionLibserviceOptions): Promise<UnionLibservice> {
    const u = new UnionLibservice(parseOptions(UnionOptions, options, 'UnionLibservice options'));
    const root = await u.#upper.listing('/');
    if (root === null) fail('ENOENT', 'scandir', '/');
    u.#rootLowers = u.#lower.layers.length > 0 && !root.has(OPAQUE);
    return u;
  }

  // --- resolution ------------------------------------------------------------

  /** One step of the walk: the entry `name` of directory `d`. */
  async #child(d: Dir, name: string): Promise<Node> {
    const path = join(d.path, name);
    const node: Node = { path, parent: d, name, type: null, upper: false, layer: -1, lowerHas: false, whiteout: false, dir: null };
    if (isMarker(name)) return node;
    // Both views are cached listings: no call to a branch unless a
    // directory is seen for the first time.
    const [upperDir, lowerDir] = await Promise.all([d.upper ? this.#upper.listing(d.path) : null, d.lowers ? this.#lower.dir(d.path) : null]);
    const type = upperDir?.get(name);
    const lower: LowerEntry | undefined = lowerDir?.get(name);
    if (type !== undefined) {
      node.type = type;
      node.upper = true;
      node.lowerHas = lower !== undefined;
      if (type === EntryType.Directory) {
        const opaque = lower?.type === EntryType.Directory && (await this.#upper.listing(path))?.has(OPAQUE) === true;
        node.dir = { path, upper: true, lowers: lower?.type === EntryType.Directory && !opaque };
      }
    } else if (lower !== undefined) {
      if (upperDir?.has(WHITEOUT_PREFIX + name)) {
        node.whiteout = true;
      } else {
        node.type = lower.type;
        node.layer = lower.layer;
        node.lowerHas = true;
        if (node.type === EntryType.Directory) node.dir = { path, upper: false, lowers: true };
      }
    }
    return node;
  }

  #root(): Dir {
    return { path: '/', upper: true, lowers: this.#rootLowers };
  }

  /**
   * Resolves a path in the union, symlinks in its directories always and the
   * final one when `follow`. Fails like the kernel: ENOENT or ENOTDIR on the
   * way, ELOOP past MAX_SYMLINKS.
   */
  async #resolve(path: string, follow: boolean, syscall: string, dest?: string, entry = false): Promise<Node> {
    if (this.#unmounted) fail('ENOTCONN', syscall, path, dest);
    const queue = splitPath(path);
    // A trailing '/' or a final '.' names a directory, through a final
    // symlink too, for a lookup. A call that makes or removes the entry
    // (`entry`: mkdir, rmdir, unlink, rename, the new name of link and
    // symlink) takes a final symlink before a '/' as the entry itself, and
    // applies the rules for the '/' itself.
    const tail = pathTail(path);
    const mustBeDir = tail === '.' || (tail === '/' && !entry);
    if (mustBeDir) follow = true;
    const dirs: Dir[] = [this.#root()];
    let links = 0;
    for (;;) {
      const d = dirs[dirs.length - 1] as Dir;
      const name = queue.shift();
      if (name === undefined) {
        // The path names a directory itself ('/', 'a/..').
        return { path: d.path, parent: dirs[dirs.length - 2] ?? d, name: baseName(d.path), type: EntryType.Directory, upper: d.upper, layer: d.upper ? -1 : await this.#lowerLayerOf(d.path), lowerHas: d.lowers, whiteout: false, dir: d };
      }
      if (name === '..') {
        if (dirs.length > 1) dirs.pop();
        continue;
      }
      const node = await this.#child(d, name);
      const last = queue.length === 0;
      if (node.type === EntryType.Symlink && (!last || follow)) {
        if (++links > MAX_SYMLINKS) fail('ELOOP', syscall, path, dest);
        const target = await this.#branch(node).readlink(node.path);
        if (target.startsWith('/')) dirs.length = 1;
        // A link to '/' or '.' leaves the queue as it was: the walk goes on from that directory.
        queue.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
        continue;
      }
      if (last) {
        if (mustBeDir && node.type !== null && node.dir === null) fail('ENOTDIR', syscall, path, dest);
        return node;
      }
      if (node.type === null) fail('ENOENT', syscall, path, dest);
      if (node.dir === null) fail('ENOTDIR', syscall, path, dest);
      dirs.push(node.dir);
    }
  }

  /** The top lower layer of a lower-only directory (for the rare path that ends in '..'). */
  async #lowerLayerOf(path: string): Promise<number> {
    if (path === '/') return 0;
    const e = (await this.#lower.dir(parentOf(path)))?.get(baseName(path));
    return e?.layer ?? 0;
  }

  #branch(n: { upper: boolean; layer: number }): Libservice {
    return n.upper ? this.#upper : (this.#lower.layers[n.layer] as Libservice);
  }

  /** A node that must exist. */
  async #existing(path: string, follow: boolean, syscall: string, dest?: string, entry = false): Promise<Node> {
    const n = await this.#resolve(path, follow, syscall, dest, entry);
    if (n.type === null) fail('ENOENT', syscall, path, dest);
    return n;
  }

  /** A name that must not exist yet, in an existing directory. */
  async #vacant(path: string, syscall: string, userPath = path, dest?: string): Promise<Node> {
    const n = await this.#resolve(path, false, syscall, dest, true);
    if (n.type !== null) fail('EEXIST', syscall, userPath, dest);
    if (isMarker(n.name)) fail('EINVAL', syscall, userPath, dest);
    return n;
  }

  // --- copy-up and markers ---------------------------------------------------

  /** Makes the directory exist in the upper branch (copying up its missing ancestors). */
  async #upperDir(d: Dir): Promise<void> {
    if (d.upper) return;
    const parent = parentOf(d.path);
    const p = await this.#resolve(parent, false, 'mkdir');
    if (p.dir) await this.#upperDir(p.dir);
    const n = await this.#child(p.dir ?? this.#root(), baseName(d.path));
    if (!n.upper) await this.#copyUp(n, true);
    d.upper = true;
  }

  /** Copies a lower entry to the upper branch: content (unless `data` is false), mode, owner and times. */
  async #copyUp(n: Node, data: boolean): Promise<void> {
    if (n.upper || n.type === null) return;
    await this.#upperDir(n.parent);
    const from = this.#branch(n);
    const st = await from.lstat(n.path);
    switch (n.type) {
      case EntryType.Directory:
        await this.#upper.mkdir(n.path, 0o700);
        await this.#attributes(n.path, st);
        break;
      case EntryType.Symlink:
        await this.#upper.symlink(await from.readlink(n.path), n.path);
        break;
      case EntryType.File: {
        // Into a hidden work file first, renamed into place when whole: a
        // crash mid-copy leaves no half file under the real name.
        const work = join(n.parent.path, workName());
        await this.#copyFile(from, n.path, work, data);
        await this.#attributes(work, st);
        await this.#upper.rename(work, n.path);
        break;
      }
      default:
        fail('ENOTSUP', 'copyup', n.path);
    }
    n.upper = true;
    n.layer = -1;
    if (n.dir) n.dir.upper = true;
  }

  async #copyFile(from: Libservice, src: string, dst: string, data: boolean): Promise<void> {
    const out = await this.#upper.open(dst, O_CREAT | O_EXCL | O_WRONLY, 0o600);
    try {
      if (!data) return;
      const inp = await from.open(src, constants.O_RDONLY);
      try {
        const buf = new Uint8Array(COPY_CHUNK);
        for (let pos = 0; ; ) {
          const n = await from.read(inp, buf, 0, buf.length, pos);
          if (n === 0) break;
          for (let done = 0; done < n; ) done += await this.#upper.write(out, buf, done, n - done, pos + done);
          pos += n;
        }
      } finally {
        await from.close(inp);
      }
    } finally {
      await this.#upper.close(out);
    }
  }

  /** Gives an upper entry the mode, owner and times of `st`. */
  async #attributes(path: string, st: StatRecord): Promise<void> {
    const now = await this.#upper.lstat(path);
    if (now.uid !== st.uid || now.gid !== st.gid) {
      // Only root may give files away; anyone else keeps its own. Before
      // chmod: chown clears the setuid and setgid bits.
      await this.#upper.chown(path, st.uid, st.gid).catch((e) => (hasCode(e, 'EPERM') ? undefined : Promise.reject(e)));
    }
    await this.#upper.chmod(path, st.mode & 0o7777);
    await this.#upper.utimes(path, st.atimeMs, st.mtimeMs);
  }

  async #marker(path: string): Promise<void> {
    await this.#upper.close(await this.#upper.open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600));
  }

  /** Hides the lower entry `n` names. */
  async #whiteout(n: Node): Promise<void> {
    await this.#upperDir(n.parent);
    await this.#marker(join(n.parent.path, WHITEOUT_PREFIX + n.name));
  }

  async #dropWhiteout(n: Node): Promise<void> {
    if (n.whiteout) await this.#upper.unlink(join(n.parent.path, WHITEOUT_PREFIX + n.name)).catch((e) => (hasCode(e, 'ENOENT') ? undefined : Promise.reject(e)));
  }

  /** Removes the markers (whiteouts, opaque, work files) of an upper directory. */
  async #clearMarkers(path: string): Promise<void> {
    for (const e of await this.#upper.readdir(path)) {
      if (!isMarker(e.name)) continue;
      const p = join(path, e.name);
      if (e.type === EntryType.Directory) await this.#removeUpperTree(p);
      else await this.#upper.unlink(p);
    }
  }

  async #removeUpperTree(path: string): Promise<void> {
    for (const e of await this.#upper.readdir(path)) {
      const p = join(path, e.name);
      if (e.type === EntryType.Directory) await this.#removeUpperTree(p);
      else await this.#upper.unlink(p);
    }
    await this.#upper.rmdir(path);
  }

  // --- listing ---------------------------------------------------------------

  async #list(d: Dir): Promise<DirEntry[]> {
    const out = new Map<string, DirEntry>();
    const hidden = new Set<string>();
    if (d.upper) {
      for (const [name, type] of (await this.#upper.listing(d.path)) ?? []) {
        const w = whitedOut(name);
        if (w !== undefined) hidden.add(w);
        else if (!isMarker(name)) out.set(name, { name, type });
      }
    }
    if (d.lowers) {
      for (const [name, e] of (await this.#lower.dir(d.path)) ?? []) {
        if (!out.has(name) && !hidden.has(name)) out.set(name, { name, type: e.type });
      }
    }
    return [...out.values()];
  }

  /**
   * Builds the merged view of directory `d` in the upper branch at `to`
   * (which must not exist): lower files are copied with their attributes,
   * lower symlinks recreated, directories recursed. Upper entries are not
   * copied but listed in `moves`, to be renamed over once everything that
   * can fail has been done: handles open on them keep their file, and hard
   * links among them stay links.
   */
  async #materialize(d: Dir, to: string, moves: [string, string][]): Promise<void> {
    await this.#upper.mkdir(to, 0o700);
    for (const e of await this.#list(d)) {
      const n = await this.#child(d, e.name);
      const dst = join(to, e.name);
      if (n.upper && !n.dir?.lowers) {
        moves.push([n.path, dst]);
        continue;
      }
      const from = this.#branch(n);
      if (n.dir) await this.#materialize(n.dir, dst, moves);
      else if (n.type === EntryType.Symlink) await this.#upper.symlink(await from.readlink(n.path), dst);
      else if (n.type === EntryType.File) {
        await this.#copyFile(from, n.path, dst, true);
        await this.#attributes(dst, await from.lstat(n.path));
      } else fail('ENOTSUP', 'rename', n.path);
    }
    await this.#attributes(to, await this.#branch(await this.#resolve(d.path, false, 'rename')).lstat(d.path));
  }

  // --- handles ---------------------------------------------------------------

  #file(handle: number, syscall: string): OpenFile {
    const f = this.#handles.get(checkHandle(handle));
    if (!f) fail('EBADF', syscall);
    return f;
  }

  async #relay<T>(syscall: string, path: string | undefined, dest: string | undefined, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw asServiceError(e, syscall, path, dest);
    }
  }

  // --- the contract ------------------------------------------------------------

  async open(path: string, flags: number, mode = 0o666): Promise<number> {
    if (this.#handles.size >= this.#maxHandles) fail('EMFILE', 'open', path);
    const changes = opensForChange(flags) || (flags & O_CREAT) !== 0;
    const body = async () => {
      const exclusive = (flags & (O_CREAT | O_EXCL)) === (O_CREAT | O_EXCL);
      const n = await this.#resolve(path, (flags & O_NOFOLLOW) === 0 && !exclusive, 'open');
      if (n.type === null) {
        if ((flags & O_CREAT) === 0) fail('ENOENT', 'open', path);
        if (pathTail(path) !== '') fail('EISDIR', 'open', path); // a file cannot be made with a trailing '/'
        if (isMarker(n.name)) fail('EINVAL', 'open', path);
        await this.#upperDir(n.parent);
        const handle = await this.#upper.open(n.path, flags, mode);
        await this.#dropWhiteout(n);
        return { branch: this.#upper, handle, path: n.path };
      }
      if (exclusive) fail('EEXIST', 'open', path);
      if (opensForChange(flags) && n.type === EntryType.File) await this.#copyUp(n, (flags & O_TRUNC) === 0);
      const branch = this.#branch(n);
      return { branch, handle: await branch.open(n.path, flags, mode), path: n.path };
    };
    const f = await this.#relay('open', path, undefined, () => (changes ? this.#changes.run(body) : body()));
    const handle = this.#nextHandle++;
    this.#handles.set(handle, f);
    return handle;
  }

  async close(handle: number): Promise<void> {
    const f = this.#file(handle, 'close');
    this.#handles.delete(handle);
    await f.branch.close(f.handle);
  }

  async read(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number> {
    const f = this.#file(handle, 'read');
    return f.branch.read(f.handle, buffer, offset, length, position);
  }

  async write(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number> {
    const f = this.#file(handle, 'write');
    return f.branch.write(f.handle, buffer, offset, length, position);
  }

  async fstat(handle: number): Promise<StatRecord> {
    const f = this.#file(handle, 'fstat');
    return f.branch.fstat(f.handle);
  }

  async ftruncate(handle: number, length: number): Promise<void> {
    const f = this.#file(handle, 'ftruncate');
    return f.branch.ftruncate(f.handle, length);
  }

  async fsync(handle: number): Promise<void> {
    const f = this.#file(handle, 'fsync');
    return f.branch.fsync(f.handle);
  }

  async fdatasync(handle: number): Promise<void> {
    const f = this.#file(handle, 'fdatasync');
    return f.branch.fdatasync(f.handle);
  }

  async stat(path: string): Promise<StatRecord> {
    return this.#relay('stat', path, undefined, async () => {
      const n = await this.#existing(path, true, 'stat');
      return this.#branch(n).lstat(n.path);
    });
  }

  async lstat(path: string): Promise<StatRecord> {
    return this.#relay('lstat', path, undefined, async () => {
      const n = await this.#existing(path, false, 'lstat');
      return this.#branch(n).lstat(n.path);
    });
  }

  async readdir(path: string): Promise<DirEntry[]> {
    return this.#relay('scandir', path, undefined, async () => {
      const n = await this.#existing(path, true, 'scandir');
      if (n.dir === null) fail('ENOTDIR', 'scandir', path);
      return this.#list(n.dir);
    });
  }

  async readlink(path: string): Promise<string> {
    return this.#relay('readlink', path, undefined, async () => {
      const n = await this.#existing(path, false, 'readlink');
      return this.#branch(n).readlink(n.path);
    });
  }

  async access(path: string, mode: number = constants.F_OK): Promise<void> {
    return this.#relay('access', path, undefined, async () => {
      const n = await this.#existing(path, true, 'access');
      await this.#branch(n).access(n.path, mode);
    });
  }

  async statfs(path: string): Promise<StatFsRecord> {
    return this.#relay('statfs', path, undefined, async () => {
      await this.#existing(path, true, 'statfs');
      return this.#upper.statfs('/');
    });
  }

  async mkdir(path: string, mode = 0o777): Promise<void> {
    await this.#relay('mkdir', path, undefined, () =>
      this.#changes.run(async () => {
        const n = await this.#vacant(path, 'mkdir');
        await this.#upperDir(n.parent);
        await this.#upper.mkdir(n.path, mode);
        // Over a removed lower entry: the new directory must not show what
        // the lower one held.
        if (n.whiteout) {
          await this.#marker(join(n.path, OPAQUE));
          await this.#dropWhiteout(n);
        }
      }),
    );
  }

  async unlink(path: string): Promise<void> {
    await this.#relay('unlink', path, undefined, () =>
      this.#changes.run(async () => {
        const n = await this.#existing(path, false, 'unlink', undefined, true);
        if (n.type === EntryType.Directory) fail('EISDIR', 'unlink', path);
        if (pathTail(path) !== '') fail('ENOTDIR', 'unlink', path);
        // The whiteout first: a reader never sees the lower entry come back.
        if (n.lowerHas) await this.#whiteout(n);
        if (n.upper) await this.#upper.unlink(n.path);
      }),
    );
  }

  async rmdir(path: string): Promise<void> {
    await this.#relay('rmdir', path, undefined, () =>
      this.#changes.run(async () => {
        const tail = pathTail(path);
        if (tail === '.') fail('EINVAL', 'rmdir', path);
        if (tail === '..') fail('ENOTEMPTY', 'rmdir', path);
        const n = await this.#existing(path, false, 'rmdir', undefined, true);
        if (n.dir === null) fail('ENOTDIR', 'rmdir', path);
        if (n.path === '/') fail('EBUSY', 'rmdir', path);
        if ((await this.#list(n.dir)).length > 0) fail('ENOTEMPTY', 'rmdir', path);
        // The whiteout first (the upper directory, while it is there, still wins).
        if (n.lowerHas) await this.#whiteout(n);
        if (n.upper) {
          await this.#clearMarkers(n.path);
          await this.#upper.rmdir(n.path);
        }
      }),
    );
  }

  async rename(from: string, to: string, options: RenameOptions = {}): Promise<void> {
    await this.#relay('rename', from, to, () => this.#changes.run(() => this.#rename(from, to, options.noReplace === true)));
  }

  async #rename(from: string, to: string, noReplace: boolean): Promise<void> {
    // rename(2) looks both directories up, then the source;
    // renameat2(RENAME_NOREPLACE), as emulated, the source first.
    if ([pathTail(from), pathTail(to)].some((t) => t === '.' || t === '..')) fail('EBUSY', 'rename', from, to);
    const a = await this.#resolve(from, false, 'rename', to, true);
    if (noReplace && a.type === null) fail('ENOENT', 'rename', from, to);
    const b = await this.#resolve(to, false, 'rename', to, true);
    if (a.type === null) fail('ENOENT', 'rename', from, to);
    if (noReplace && b.type !== null) fail('EEXIST', 'rename', from, to);
    if (a.path === '/' || b.path === '/') fail('EBUSY', 'rename', from, to);
    if (!a.dir && (pathTail(from) === '/' || pathTail(to) === '/')) fail('ENOTDIR', 'rename', from, to);
    if (b.path.startsWith(a.path + '/')) fail('EINVAL', 'rename', from, to);
    if (a.path.startsWith(b.path + '/')) fail('ENOTEMPTY', 'rename', from, to); // onto its own ancestor
    if (a.path === b.path) return;
    if (b.type !== null) {
      if (a.dir && !b.dir) fail('ENOTDIR', 'rename', from, to);
      if (!a.dir && b.dir) fail('EISDIR', 'rename', from, to);
      if (b.dir && (await this.#list(b.dir)).length > 0) fail('ENOTEMPTY', 'rename', from, to);
      if (!a.dir && (await this.#sameFile(a, b))) return; // hard links of one file: nothing to do
    }
    if (isMarker(b.name)) fail('EINVAL', 'rename', from, to);
    await this.#upperDir(b.parent);
    // What can fail comes first; the destination's markers go only when
    // the rename is sure to happen, or a failed rename would bring back
    // what they hid.
    if (a.dir && (a.dir.lowers || !a.upper)) {
      // A directory with lower content: its merged view, built whole in a
      // hidden work directory (lower content copied, upper content moved).
      const work = join(b.parent.path, workName());
      const moves: [string, string][] = [];
      try {
        await this.#materialize(a.dir, work, moves);
      } catch (e) {
        await this.#removeUpperTree(work).catch(() => {});
        throw e;
      }
      for (const [src, dst] of moves) await this.#upper.rename(src, dst);
      if (b.dir?.upper) await this.#clearMarkers(b.path);
      await this.#upper.rename(work, b.path);
      if (a.upper) await this.#removeUpperTree(a.path);
    } else {
      if (!a.upper) await this.#copyUp(a, true);
      if (b.dir?.upper) await this.#clearMarkers(b.path);
      await this.#upper.rename(a.path, b.path);
    }
    // The name may cover a lower directory now: keep its content hidden.
    if (a.dir && (b.lowerHas || b.whiteout)) await this.#marker(join(b.path, OPAQUE));
    await this.#dropWhiteout(b);
    if (a.lowerHas) await this.#whiteout(a);
  }

  async #sameFile(a: Node, b: Node): Promise<boolean> {
    if (a.upper !== b.upper || a.layer !== b.layer) return false;
    const [x, y] = await Promise.all([this.#branch(a).lstat(a.path), this.#branch(b).lstat(b.path)]);
    return x.ino === y.ino && x.dev === y.dev;
  }

  async link(existing: string, path: string): Promise<void> {
    await this.#relay('link', existing, path, () =>
      this.#changes.run(async () => {
        // As linkat(2): the source, then the new name, then whether a directory is linked.
        const a = await this.#existing(existing, false, 'link', path);
        const b = await this.#vacant(path, 'link', existing, path);
        if (a.dir) fail('EPERM', 'link', existing, path);
        await this.#copyUp(a, true);
        await this.#upperDir(b.parent);
        await this.#upper.link(a.path, b.path);
        await this.#dropWhiteout(b);
      }),
    );
  }

  async symlink(target: string, path: string): Promise<void> {
    if (typeof target !== 'string' || target.includes('\0')) splitPath(target, 'target');
    await this.#relay('symlink', target, path, () =>
      this.#changes.run(async () => {
        const n = await this.#vacant(path, 'symlink', target, path);
        await this.#upperDir(n.parent);
        await this.#upper.symlink(target, n.path);
        await this.#dropWhiteout(n);
      }),
    );
  }

  /** A change to an existing entry, after copying it up. */
  async #change(syscall: string, path: string, data: boolean, op: (upperPath: string) => Promise<void>): Promise<void> {
    await this.#relay(syscall, path, undefined, () =>
      this.#changes.run(async () => {
        const n = await this.#existing(path, true, syscall);
        await this.#copyUp(n, data);
        await op(n.path);
      }),
    );
  }

  async truncate(path: string, length: number): Promise<void> {
    checkNumber(length, 'length');
    await this.#change('open', path, length > 0, async (p) => {
      await this.#upper.truncate(p, length);
    });
  }

  async chmod(path: string, mode: number): Promise<void> {
    await this.#change('chmod', path, true, (p) => this.#upper.chmod(p, mode));
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    await this.#change('chown', path, true, (p) => this.#upper.chown(p, uid, gid));
  }

  async utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    await this.#change('utime', path, true, (p) => this.#upper.utimes(p, atimeMs, mtimeMs));
  }

  /**
   * A change of attributes through a handle. An upper file's handle takes
   * it itself. A lower file is read-only: the change goes to its copy in
   * the upper branch, copied up now if it is not there yet, found by the
   * path the handle was opened at, as long as that path still holds the
   * handle's file in its layer (the handle keeps reading the lower file,
   * as overlayfs handles did before Linux 4.19). A lower file no longer at
   * that path, or hidden there by something that is not a file, fails
   * with EROFS. (A name removed and made again meanwhile counts as the
   * same file: the union keeps no identity across a whiteout.)
   */
  async #handleChange(handle: number, syscall: string, here: (branch: Libservice, h: number) => Promise<void>, there: (upperPath: string) => Promise<void>): Promise<void> {
    const f = this.#file(handle, syscall);
    if (f.branch === this.#upper) return this.#relay(syscall, undefined, undefined, () => here(f.branch, f.handle));
    await this.#relay(syscall, undefined, undefined, () =>
      this.#changes.run(async () => {
        const n = await this.#resolve(f.path, false, syscall).catch(() => null);
        const held = await Promise.all([f.branch.lstat(f.path), f.branch.fstat(f.handle)]).then(([a, b]) => a.ino === b.ino && a.dev === b.dev, () => false);
        const usable = n !== null && n.type === EntryType.File && (n.upper || this.#branch(n) === f.branch);
        if (!held || !usable || n === null) fail('EROFS', syscall);
        await this.#copyUp(n, true);
        await there(n.path);
      }),
    );
  }

  async fchmod(handle: number, mode: number): Promise<void> {
    checkNumber(mode, 'mode');
    await this.#handleChange(handle, 'fchmod', (b, h) => b.fchmod(h, mode), (p) => this.#upper.chmod(p, mode));
  }

  async fchown(handle: number, uid: number, gid: number): Promise<void> {
    await this.#handleChange(handle, 'fchown', (b, h) => b.fchown(h, uid, gid), (p) => this.#upper.chown(p, uid, gid));
  }

  async futimes(handle: number, atimeMs: number, mtimeMs: number): Promise<void> {
    await this.#handleChange(handle, 'futime', (b, h) => b.futimes(h, atimeMs, mtimeMs), (p) => this.#upper.utimes(p, atimeMs, mtimeMs));
  }

  /** Closes the union's handles. The branches stay mounted: they may be shared (an image's layers). */
  async unmount(): Promise<void> {
    this.#unmounted = true;
    const open = [...this.#handles.values()];
    this.#handles.clear();
    await Promise.all(open.map((f) => f.branch.close(f.handle).catch(() => {})));
  }
}
