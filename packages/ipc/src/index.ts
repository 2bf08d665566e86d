export { FrontDriver } from './front.js';
export type { Reply } from './front.js';
export { BackDriver } from './back.js';
export type { Request, HandlerResult, ServeOptions, NativeBackEnd } from './back.js';
export { FrontDriverOptions, BackDriverOptions } from './options.js';
export { IpcError, IpcErrorCode } from './errors.js';
export { Opcode, PROTOCOL_VERSION, MAX_PATH, encodeRequest, decodeRequest, encodeResult, decodeResult } from './protocol.js';
export type { Entry, Message } from './protocol.js';
