/** Stable codes carried by every {@link IpcError}. */
export const IpcErrorCode = {
  /** No channel has that name: no I/O service runs at that endpoint. */
  NotFound: 'ERR_IPC_NOT_FOUND',
  /** A channel with that name exists already. */
  Exists: 'ERR_IPC_EXISTS',
  /** The channel belongs to another user (its segments are mode 0600). */
  AccessDenied: 'ERR_IPC_ACCESS_DENIED',
  /** The segment is not a channel of a layout this version reads. */
  BadLayout: 'ERR_IPC_BAD_LAYOUT',
  /** An argument or option is out of range or of the wrong type. */
  InvalidArgument: 'ERR_IPC_INVALID_ARGUMENT',
  /** Every request buffer of the channel is attached. */
  NoBuffers: 'ERR_IPC_NO_BUFFERS',
  /** The service exited or stopped; a request in flight may or may not have run. */
  ServiceGone: 'ERR_IPC_SERVICE_GONE',
  /** A reply broke the channel's rules. */
  Protocol: 'ERR_IPC_PROTOCOL',
  /** Bytes that do not decode as a message of the protocol. */
  BadMessage: 'ERR_IPC_BAD_MESSAGE',
  /** A sync call while an async call of the same driver is in flight. */
  Busy: 'ERR_IPC_BUSY',
  /** A sync call to a service that this same thread serves: it would wait forever. */
  SameThread: 'ERR_IPC_SAME_THREAD',
  /** The driver was detached or closed. */
  Detached: 'ERR_IPC_DETACHED',
  /** Any other operating-system error. */
  Io: 'ERR_IPC_IO',
  /** The native binary could not be loaded. */
  NativeLoad: 'ERR_IPC_NATIVE_LOAD',
} as const;

export type IpcErrorCode = (typeof IpcErrorCode)[keyof typeof IpcErrorCode];

const KNOWN = new Set<string>(Object.values(IpcErrorCode));

/** The one error type of this package: an `Error` with a stable `code`. */
export class IpcError extends Error {
  override name = 'IpcError';
  readonly code: IpcErrorCode;

  constructor(code: IpcErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Turns a native `"ERR_IPC_X: message"` error into an {@link IpcError}; others pass through. */
export function fromNative(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const m = /^(ERR_IPC_[A-Z_]+): (.*)$/s.exec(err.message);
  if (m && KNOWN.has(m[1] as string)) return new IpcError(m[1] as IpcErrorCode, m[2] as string);
  return err;
}
