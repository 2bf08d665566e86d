// The native binding, loaded once (see @polytropon/native-loader), and the
// numbering of its operations (`run` in native/src/lib.rs).
import { loadNativeBinding } from '@polytropon/native-loader';
import { CephError, CephErrorCode } from './errors.js';

/** The shape of the binding, from the declarations `napi build` generates. */
type Binding = typeof import('../native.js');
export type NativeClient = import('../native.js').CephClient;

let binding: Binding | undefined;

/** The binding; loading it is deferred so that importing the package never fails. */
export function native(): Binding {
  binding ??= loadNativeBinding<Binding>({
    binaryName: 'libservice-ceph',
    packageName: '@polytropon/libservice-ceph',
    from: import.meta.url,
    onFailure: (message) => new CephError(CephErrorCode.NativeLoad, message),
  });
  return binding;
}

/** Operation numbers of `CephClient.exec`. */
export const Op = {
  Stat: 0,
  Open: 1,
  Close: 2,
  Fstat: 3,
  Readdir: 4,
  Mkdir: 5,
  Rmdir: 6,
  Unlink: 7,
  Rename: 8,
  Link: 9,
  Symlink: 10,
  Readlink: 11,
  Truncate: 12,
  Ftruncate: 13,
  Fsync: 14,
  Chmod: 15,
  Chown: 16,
  Utimes: 17,
  Access: 18,
  Statfs: 19,
  Unmount: 20,
  Fchmod: 21,
  Fchown: 22,
  Futimes: 23,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

/** What an operation answers: `-errno` (or a count, or 0), attributes, entries, a link's target. */
export type Output = number | Float64Array | Buffer | string;
