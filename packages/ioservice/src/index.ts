// @polytropon/ioservice: a per-pool I/O service hosting filesystem
// instances, and the client libservice that reaches one over shared memory.
export { IoService } from './service.js';
export type { IoServiceOptions, IoServiceStats } from './service.js';
export { IoServiceClient } from './client.js';
export type { SyncLibservice } from '@polytropon/libservice';
export type { OperationStats } from './stats.js';
export { ServiceConfig, StackConfig, buildStack, parseConfig } from './config.js';
