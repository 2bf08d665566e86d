// @polytropon/iolib: node:fs for applications of a pool, with paths under
// a mount served by the pool's I/O service over shared memory.
export { createIoLibrary, FD_BASE } from './library.js';
export type { IoLibrary, IoLibraryOptions } from './library.js';
export { MountsOptions } from './mounts.js';
export type { Mounts } from './mounts.js';
export { IoFileHandle } from './file-handle.js';
export { IoDirent, IoStats } from './records.js';
