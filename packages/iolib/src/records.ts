// node:fs's Stats and Dirent for mounted files, built from the contract's
// records: the same fields, methods and Date getters (node:fs's own classes
// have no public constructors).
import type { DirEntry, StatRecord } from '@polytropon/libservice';
import { constants } from 'node:fs';

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK } = constants;

abstract class FileType {
  protected abstract get typeBits(): number;
  isFile(): boolean {
    return this.typeBits === S_IFREG;
  }
  isDirectory(): boolean {
    return this.typeBits === S_IFDIR;
  }
  isSymbolicLink(): boolean {
    return this.typeBits === S_IFLNK;
  }
  isFIFO(): boolean {
    return this.typeBits === S_IFIFO;
  }
  isSocket(): boolean {
    return this.typeBits === S_IFSOCK;
  }
  isCharacterDevice(): boolean {
    return this.typeBits === S_IFCHR;
  }
  isBlockDevice(): boolean {
    return this.typeBits === S_IFBLK;
  }
}

/** The attributes of a mounted file, shaped like node:fs's `Stats`. */
export class IoStats extends FileType implements StatRecord {
  dev!: number;
  ino!: number;
  mode!: number;
  nlink!: number;
  uid!: number;
  gid!: number;
  rdev!: number;
  size!: number;
  blksize!: number;
  blocks!: number;
  atimeMs!: number;
  mtimeMs!: number;
  ctimeMs!: number;
  birthtimeMs!: number;

  constructor(r: StatRecord) {
    super();
    // Field by field: Object.assign is several times slower here.
    this.dev = r.dev;
    this.ino = r.ino;
    this.mode = r.mode;
    this.nlink = r.nlink;
    this.uid = r.uid;
    this.gid = r.gid;
    this.rdev = r.rdev;
    this.size = r.size;
    this.blksize = r.blksize;
    this.blocks = r.blocks;
    this.atimeMs = r.atimeMs;
    this.mtimeMs = r.mtimeMs;
    this.ctimeMs = r.ctimeMs;
    this.birthtimeMs = r.birthtimeMs;
  }

  protected get typeBits(): number {
    return this.mode & S_IFMT;
  }
  get atime(): Date {
    return new Date(this.atimeMs);
  }
  get mtime(): Date {
    return new Date(this.mtimeMs);
  }
  get ctime(): Date {
    return new Date(this.ctimeMs);
  }
  get birthtime(): Date {
    return new Date(this.birthtimeMs);
  }
}

/** A directory entry of a mounted directory, shaped like node:fs's `Dirent`. */
export class IoDirent extends FileType {
  readonly name: string;
  readonly parentPath: string;
  readonly #type: number;

  constructor(e: DirEntry, parentPath: string) {
    super();
    this.name = e.name;
    this.parentPath = parentPath;
    this.#type = e.type;
  }

  /** node:fs's deprecated alias of `parentPath`. */
  get path(): string {
    return this.parentPath;
  }

  protected get typeBits(): number {
    return this.#type << 12;
  }
}
