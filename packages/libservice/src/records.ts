// node:fs's Stats, Dirent and StatFs as the contract's plain records.
import type { Dirent, Stats, StatsFs } from 'node:fs';
import { EntryType, type DirEntry, type StatFsRecord, type StatRecord } from './contract.js';

export function statRecord(s: Stats): StatRecord {
  return {
    dev: s.dev, ino: s.ino, mode: s.mode, nlink: s.nlink, uid: s.uid, gid: s.gid, rdev: s.rdev,
    size: s.size, blksize: s.blksize, blocks: s.blocks,
    atimeMs: s.atimeMs, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, birthtimeMs: s.birthtimeMs,
  };
}

export function entryType(d: Dirent): EntryType {
  if (d.isFile()) return EntryType.File;
  if (d.isDirectory()) return EntryType.Directory;
  if (d.isSymbolicLink()) return EntryType.Symlink;
  if (d.isFIFO()) return EntryType.Fifo;
  if (d.isSocket()) return EntryType.Socket;
  if (d.isCharacterDevice()) return EntryType.CharDevice;
  if (d.isBlockDevice()) return EntryType.BlockDevice;
  return EntryType.Unknown;
}

export function dirEntry(d: Dirent): DirEntry {
  return { name: d.name, type: entryType(d) };
}

/** The entry type a file mode says. */
export function entryTypeOfMode(mode: number): EntryType {
  return ((mode >>> 12) & 0xf) as EntryType;
}

export function statFsRecord(s: StatsFs): StatFsRecord {
  return { bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree };
}
