// Errors of setting a Ceph client up, with stable codes. Errors of the
// filesystem operations themselves are FsErrors, as every libservice's.
import { codeOf, type PosixCode } from '@polytropon/libservice';

export const CephErrorCode = {
  /** This package's native binary is missing for the platform. */
  NativeLoad: 'ERR_CEPH_NATIVE_LOAD',
  /** libcephfs (Debian: libcephfs2) could not be loaded. */
  Library: 'ERR_CEPH_LIBRARY',
  /** The client could not connect or mount (see `stage` and `errno`). */
  Connect: 'ERR_CEPH_CONNECT',
} as const;
export type CephErrorCode = (typeof CephErrorCode)[keyof typeof CephErrorCode];

/** Which step of connecting failed. */
export type ConnectStage = 'create' | 'conf' | 'option' | 'filesystem' | 'mount' | 'root';

const HINTS: Partial<Record<ConnectStage, Partial<Record<PosixCode, string>>>> = {
  mount: {
    ENOENT: 'the root directory does not exist in the filesystem (createRoot: true makes it)',
    ETIMEDOUT: 'no monitor answered in time (is the cluster up? are monHost / conf right?)',
    EACCES: 'the cluster refused the credentials (clientId, keyring or key)',
    EPERM: 'the cluster refused the credentials (clientId, keyring or key)',
    ENOTSUP: 'the filesystem could not be mounted with these credentials',
  },
  conf: { ENOENT: 'the conf file does not exist' },
  option: { ENOENT: 'libcephfs has no such option', EINVAL: 'libcephfs refused the value' },
  filesystem: { ENOENT: 'the cluster has no filesystem of that name' },
};

/** A failure to load libcephfs or to connect a client. */
export class CephError extends Error {
  readonly code: CephErrorCode;
  /** For ERR_CEPH_CONNECT: the step that failed. */
  readonly stage?: ConnectStage;
  /** For ERR_CEPH_CONNECT: libcephfs's error, as a POSIX code ('ETIMEDOUT'...). */
  readonly errno?: PosixCode;

  constructor(code: CephErrorCode, message: string, detail: { stage?: ConnectStage; errno?: PosixCode } = {}) {
    super(message);
    this.name = 'CephError';
    this.code = code;
    if (detail.stage !== undefined) this.stage = detail.stage;
    if (detail.errno !== undefined) this.errno = detail.errno;
  }
}

/** The CephError for a `CODE: detail` reason the binding raised (anything else unchanged). */
export function fromNative(e: unknown, what: string): unknown {
  const message = e instanceof Error ? e.message : String(e);
  if (message.startsWith('ERR_CEPH_LIBRARY: '))
    return new CephError(
      CephErrorCode.Library,
      `${what}: libcephfs is not available: ${message.slice(18)}. Install it (Debian/Ubuntu: apt-get install libcephfs2) or name the file with the \`library\` option.`,
    );
  const m = /^ERR_CEPH_CONNECT: (\d+) (\w+)(?: (.*))?$/.exec(message);
  if (m) {
    const errno = codeOf(Number(m[1]));
    const stage = m[2] as ConnectStage;
    const option = m[3] !== undefined ? ` ${m[3]}` : '';
    const hint = HINTS[stage]?.[errno];
    return new CephError(CephErrorCode.Connect, `${what}: ${stage}${option} failed with ${errno}${hint ? `: ${hint}` : ''}`, { stage, errno });
  }
  return e;
}
