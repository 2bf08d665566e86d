export { Rcqb } from './queue.js';
export { RcqbError, RcqbErrorCode } from './errors.js';
export { DEFAULT_SPIN_NS, MAX_CAPACITY, MAX_ITEM_SIZE } from './options.js';

export type { AsyncWaitOptions, RcqbHandle, RcqbStats, WaitOptions } from './queue.js';
export type { CreateOptions, OpenOptions } from './options.js';
