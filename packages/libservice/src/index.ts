// @polytropon/libservice: the contract every user-level filesystem service
// keeps, its errors, and the local-directory libservice. The conformance
// suite is the separate entry '@polytropon/libservice/conformance'.
export { EntryType, isLibservice } from './contract.js';
export type { DirEntry, Libservice, RenameOptions, StatFsRecord, StatRecord, SyncLibservice } from './contract.js';
export { FsError, asServiceError, codeOf, hasCode } from './errors.js';
export type { PosixCode } from './errors.js';
export { opensForChange, parseOpenFlags } from './flags.js';
export { LocalLibservice, MAX_SYMLINKS } from './local.js';
export type { LocalLibserviceOptions } from './local.js';
export { checkHandle, checkIo, checkNumber, checkPath, parseOptions, pathTail, splitPath } from './arguments.js';
export { entryTypeOfMode } from './records.js';
export { throwIfNoEntryHidesNotDir } from './syscalls.js';
