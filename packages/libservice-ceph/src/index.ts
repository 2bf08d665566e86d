// @polytropon/libservice-ceph: CephFS as a libservice, one user-level
// libcephfs client per tenant.
export { CephLibservice, CephOptions } from './ceph.js';
export type { CephLibserviceOptions } from './ceph.js';
export { CephError, CephErrorCode } from './errors.js';
export type { ConnectStage } from './errors.js';
