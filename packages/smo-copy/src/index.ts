export { copy, supportedUnits, bestUnit, AUTO_STREAMING_MIN } from './copy.js';
export type { CopyMethod, CopyOptions, VectorUnit } from './copy.js';
export { cmaRead, cmaWrite, addressOf } from './cma.js';
export type { CmaOptions } from './cma.js';
export { createSharedBuffer, openSharedBuffer, unlinkSharedBuffer } from './shared.js';
export { SmoCopyError, SmoCopyErrorCode } from './errors.js';
export type { Bytes } from './views.js';
