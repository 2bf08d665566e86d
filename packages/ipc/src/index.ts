export { FrontDriver } from './front.js';
export type { Reply } from './front.js';
export { BackDriver } from './back.js';
export type { Request, HandlerResult, ServeOptions } from './back.js';
export { FrontDriverOptions, BackDriverOptions } from './options.js';
export { IpcError, IpcErrorCode } from './errors.js';
