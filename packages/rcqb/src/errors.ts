/** Stable codes carried by every {@link RcqbError}. */
export const RcqbErrorCode = {
  /** The queue was closed: no more enqueues; dequeues fail once drained. */
  Closed: 'ERR_RCQB_CLOSED',
  /** A timed operation ran out of time. */
  Timeout: 'ERR_RCQB_TIMEOUT',
  /** The item is longer than the queue's item size. */
  ItemTooLarge: 'ERR_RCQB_ITEM_TOO_LARGE',
  /** No queue (shared-memory segment) has that name. */
  NotFound: 'ERR_RCQB_NOT_FOUND',
  /** A queue with that name exists already. */
  Exists: 'ERR_RCQB_EXISTS',
  /** The segment is not an RCQB queue of a layout this version reads. */
  BadLayout: 'ERR_RCQB_BAD_LAYOUT',
  /** An argument or option is out of range or of the wrong type. */
  InvalidArgument: 'ERR_RCQB_INVALID_ARGUMENT',
  /** An async operation was aborted through its AbortSignal. */
  Aborted: 'ERR_RCQB_ABORTED',
  /** Any other operating-system error. */
  Io: 'ERR_RCQB_IO',
  /** The native binary could not be loaded. */
  NativeLoad: 'ERR_RCQB_NATIVE_LOAD',
} as const;

export type RcqbErrorCode = (typeof RcqbErrorCode)[keyof typeof RcqbErrorCode];

const KNOWN = new Set<string>(Object.values(RcqbErrorCode));

/** The one error type of this package: an `Error` with a stable `code`. */
export class RcqbError extends Error {
  override name = 'RcqbError';
  readonly code: RcqbErrorCode;

  constructor(code: RcqbErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Turns an error thrown by the native layer (`"ERR_RCQB_X: message"`) into an
 * {@link RcqbError}; anything else passes through unchanged.
 */
export function fromNative(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  if (err.name === 'AbortError') {
    return new RcqbError(RcqbErrorCode.Aborted, 'the operation was aborted', { cause: err });
  }
  const m = /^(ERR_RCQB_[A-Z_]+): (.*)$/s.exec(err.message);
  if (m && KNOWN.has(m[1] as string)) {
    return new RcqbError(m[1] as RcqbErrorCode, m[2] as string);
  }
  return err;
}
