// The native binding, loaded once (see @polytropon/native-loader).
import { loadNativeBinding } from '@polytropon/native-loader';
import { SmoCopyError, SmoCopyErrorCode } from './errors.js';

/** The shape of the binding, from the declarations `napi build` generates. */
type Binding = typeof import('../native.js');

export const native: Binding = loadNativeBinding<Binding>({
  binaryName: 'smo-copy',
  packageName: '@polytropon/smo-copy',
  from: import.meta.url,
  onFailure: (message) => new SmoCopyError(SmoCopyErrorCode.NativeLoad, message),
});
