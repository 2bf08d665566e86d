// The upper branch as the union sees it. Every call goes through here, so
// the directory listings the union reads for lookups can be cached and kept
// current by the union's own changes: the union is the upper branch's only
// writer while it is in use (as overlayfs requires of its upper directory).
// A lookup then costs no call to the branch for the directories on its way;
// only the final operation reaches it.
import { EntryType, entryTypeOfMode, hasCode } from '@polytropon/libservice';
import type { DirEntry, Libservice, RenameOptions, StatFsRecord, StatRecord } from '@polytropon/libservice';
import { constants } from 'node:fs';
import { Lru } from './lru.js';
import { baseName, join, parentOf } from './markers.js';

/** Names in a directory of the upper branch (markers included) and their types. */
export type Listing = Map<string, EntryType>;

export class UpperBranch implements Libservice {
  readonly #branch: Libservice;
  readonly #dirs: Lru<Listing>;
  /**
   * Bumped by every change, and `#changing` counts the changes under way: a
   * listing read while any change ran is not cached (it may predate the
   * change, which then found nothing to update). Changes apply themselves
   * to the cached listings.
   */
  #epoch = 0;
  #changing = 0;

  constructor(branch: Libservice, capacity: number) {
    this.#branch = branch;
    this.#dirs = new Lru(capacity);
  }

  /** The listing of an upper directory, or null when the upper branch has no directory there. */
  async listing(path: string): Promise<Listing | null> {
    const cached = this.#dirs.get(path);
    if (cached !== undefined) return cached;
    const epoch = this.#epoch;
    const quiet = this.#changing === 0;
    let entries: DirEntry[];
    try {
      entries = await this.#branch.readdir(path);
    } catch (e) {
      if (hasCode(e, 'ENOENT') || hasCode(e, 'ENOTDIR')) return null;
      throw e;
    }
    const listing: Listing = new Map();
    for (const e of entries) {
      listing.set(e.name, e.type === EntryType.Unknown ? entryTypeOfMode((await this.#branch.lstat(join(path, e.name))).mode) : e.type);
    }
    if (quiet && this.#changing === 0 && this.#epoch === epoch) this.#dirs.set(path, listing);
    return listing;
  }

  async #change<T>(op: () => Promise<T>, done: (result: T) => void | Promise<void>): Promise<T> {
    this.#epoch++;
    this.#changing++;
    try {
      const r = await op();
      await done(r);
      return r;
    } finally {
      this.#changing--;
      this.#epoch++;
    }
  }

  #added(path: string, type: EntryType): void {
    const l = this.#dirs.get(parentOf(path));
    if (l !== undefined && !l.has(baseName(path))) l.set(baseName(path), type);
  }

  #removed(path: string): void {
    this.#dirs.get(parentOf(path))?.delete(baseName(path));
  }

  open(path: string, flags: number, mode?: number): Promise<number> {
    if ((flags & constants.O_CREAT) === 0) return this.#branch.open(path, flags, mode);
    return this.#change(
      () => this.#branch.open(path, flags, mode),
      () => this.#added(path, EntryType.File),
    );
  }

  mkdir(path: string, mode?: number): Promise<void> {
    return this.#change(
      () => this.#branch.mkdir(path, mode),
      () => {
        this.#added(path, EntryType.Directory);
        this.#dirs.set(path, new Map());
      },
    );
  }

  rmdir(path: string): Promise<void> {
    return this.#change(
      () => this.#branch.rmdir(path),
      () => {
        this.#removed(path);
        this.#dirs.deleteTree(path);
      },
    );
  }

  unlink(path: string): Promise<void> {
    return this.#change(
      () => this.#branch.unlink(path),
      () => this.#removed(path),
    );
  }

  rename(from: string, to: string, options?: RenameOptions): Promise<void> {
    return this.#change(
      () => this.#branch.rename(from, to, options),
      async () => {
        this.#removed(from);
        this.#removed(to);
        this.#dirs.deleteTree(from);
        this.#dirs.deleteTree(to);
        if (this.#dirs.get(parentOf(to)) !== undefined) this.#added(to, entryTypeOfMode((await this.#branch.lstat(to)).mode));
      },
    );
  }

  link(existing: string, path: string): Promise<void> {
    return this.#change(
      () => this.#branch.link(existing, path),
      // link(2) links a symlink itself, so the new name has the old one's type.
      async () => this.#added(path, this.#dirs.get(parentOf(existing))?.get(baseName(existing)) ?? entryTypeOfMode((await this.#branch.lstat(path)).mode)),
    );
  }

  symlink(target: string, path: string): Promise<void> {
    return this.#change(
      () => this.#branch.symlink(target, path),
      () => this.#added(path, EntryType.Symlink),
    );
  }

  // Calls that change no listing go straight to the branch.
  close(h: number): Promise<void> {
    return this.#branch.close(h);
  }
  read(h: number, b: Uint8Array, o: number, l: number, p: number | null): Promise<number> {
    return this.#branch.read(h, b, o, l, p);
  }
  write(h: number, b: Uint8Array, o: number, l: number, p: number | null): Promise<number> {
    return this.#branch.write(h, b, o, l, p);
  }
  stat(path: string): Promise<StatRecord> {
    return this.#branch.stat(path);
  }
  lstat(path: string): Promise<StatRecord> {
    return this.#branch.lstat(path);
  }
  fstat(h: number): Promise<StatRecord> {
    return this.#branch.fstat(h);
  }
  readdir(path: string): Promise<DirEntry[]> {
    return this.#branch.readdir(path);
  }
  readlink(path: string): Promise<string> {
    return this.#branch.readlink(path);
  }
  truncate(path: string, length: number): Promise<void> {
    return this.#branch.truncate(path, length);
  }
  ftruncate(h: number, length: number): Promise<void> {
    return this.#branch.ftruncate(h, length);
  }
  fsync(h: number): Promise<void> {
    return this.#branch.fsync(h);
  }
  fchmod(h: number, mode: number): Promise<void> {
    return this.#branch.fchmod(h, mode);
  }
  fchown(h: number, uid: number, gid: number): Promise<void> {
    return this.#branch.fchown(h, uid, gid);
  }
  futimes(h: number, atimeMs: number, mtimeMs: number): Promise<void> {
    return this.#branch.futimes(h, atimeMs, mtimeMs);
  }
  fdatasync(h: number): Promise<void> {
    return this.#branch.fdatasync(h);
  }
  chmod(path: string, mode: number): Promise<void> {
    return this.#branch.chmod(path, mode);
  }
  chown(path: string, uid: number, gid: number): Promise<void> {
    return this.#branch.chown(path, uid, gid);
  }
  utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    return this.#branch.utimes(path, atimeMs, mtimeMs);
  }
  access(path: string, mode?: number): Promise<void> {
    return this.#branch.access(path, mode);
  }
  statfs(path: string): Promise<StatFsRecord> {
    return this.#branch.statfs(path);
  }
  unmount(): Promise<void> {
    return this.#branch.unmount();
  }
}
