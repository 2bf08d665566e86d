/** Stable codes carried by every {@link SmoCopyError}. */
export const SmoCopyErrorCode = {
  /** A range reaches outside its buffer, or an offset or length is negative. */
  OutOfRange: 'ERR_SMO_OUT_OF_RANGE',
  /** Source and destination share bytes (a copy, not a move). */
  Overlap: 'ERR_SMO_OVERLAP',
  /** An argument or option has the wrong type or value. */
  InvalidArgument: 'ERR_SMO_INVALID_ARGUMENT',
  /** A forced vector unit this CPU lacks, or a runtime without external buffers. */
  Unsupported: 'ERR_SMO_UNSUPPORTED',
  /** CMA refused by ptrace rules (EPERM / EACCES); the message says what allows it. */
  CmaPermission: 'ERR_SMO_CMA_PERMISSION',
  /** CMA: no process with that pid (ESRCH). */
  CmaNoProcess: 'ERR_SMO_CMA_NO_PROCESS',
  /** CMA: a range not mapped in one of the two processes (EFAULT). */
  CmaBadAddress: 'ERR_SMO_CMA_BAD_ADDRESS',
  /** CMA: the kernel has no process_vm_readv/writev (ENOSYS). */
  CmaUnavailable: 'ERR_SMO_CMA_UNAVAILABLE',
  /** No shared buffer has that name. */
  NotFound: 'ERR_SMO_NOT_FOUND',
  /** A shared buffer with that name exists already. */
  Exists: 'ERR_SMO_EXISTS',
  /** The shared buffer belongs to another user (segments are mode 0600). */
  AccessDenied: 'ERR_SMO_ACCESS_DENIED',
  /** Any other operating-system error. */
  Io: 'ERR_SMO_IO',
  /** The native binary could not be loaded. */
  NativeLoad: 'ERR_SMO_NATIVE_LOAD',
} as const;

export type SmoCopyErrorCode = (typeof SmoCopyErrorCode)[keyof typeof SmoCopyErrorCode];

const KNOWN = new Set<string>(Object.values(SmoCopyErrorCode));

/** The one error type of this package: an `Error` with a stable `code`. */
export class SmoCopyError extends Error {
  override name = 'SmoCopyError';
  readonly code: SmoCopyErrorCode;
  /** For CMA errors: the operating system's error number. */
  readonly errno?: number;
  /** For CMA errors: `process_vm_readv` or `process_vm_writev`. */
  readonly syscall?: string;

  constructor(code: SmoCopyErrorCode, message: string, details?: { errno?: number; syscall?: string }) {
    super(message);
    this.code = code;
    if (details?.errno !== undefined) this.errno = details.errno;
    if (details?.syscall !== undefined) this.syscall = details.syscall;
  }
}

/**
 * Turns an error thrown by the native layer (`"ERR_SMO_X: message"`, or
 * `"ERR_SMO_X errno=N syscall=S: message"`) into a {@link SmoCopyError};
 * anything else passes through unchanged.
 */
export function fromNative(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const m = /^(ERR_SMO_[A-Z_]+)(?: errno=(\d+) syscall=(\w+))?: (.*)$/s.exec(err.message);
  if (!m || !KNOWN.has(m[1] as string)) return err;
  const details = m[2] === undefined ? undefined : { errno: Number(m[2]), syscall: m[3] as string };
  return new SmoCopyError(m[1] as SmoCopyErrorCode, m[4] as string, details);
}
