// @polytropon/libservice-union: a union of libservices (a writable upper
// branch over read-only lower branches), in the OCI layer convention.
export { UnionLibservice } from './union.js';
export type { UnionLibserviceOptions } from './union.js';
export { OPAQUE, WHITEOUT_PREFIX } from './markers.js';
