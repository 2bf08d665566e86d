// The native binding, loaded once (see @polytropon/native-loader).
import { loadNativeBinding } from '@polytropon/native-loader';
import { IpcError, IpcErrorCode } from './errors.js';

/** The shape of the binding, from the declarations `napi build` generates. */
type Binding = typeof import('../native.js');

export const native: Binding = loadNativeBinding<Binding>({
  binaryName: 'ipc',
  packageName: '@polytropon/ipc',
  from: import.meta.url,
  onFailure: (message) => new IpcError(IpcErrorCode.NativeLoad, message),
});
