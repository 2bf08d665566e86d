// The native binding, loaded once (see @polytropon/native-loader).
import { loadNativeBinding } from '@polytropon/native-loader';
import { RcqbError, RcqbErrorCode } from './errors.js';

export type { NativeQueue, NativeStats } from '../native.js';
/** The shape of the binding, from the declarations `napi build` generates. */
type Binding = typeof import('../native.js');

export const native: Binding = loadNativeBinding<Binding>({
  binaryName: 'rcqb',
  packageName: '@polytropon/rcqb',
  from: import.meta.url,
  onFailure: (message) => new RcqbError(RcqbErrorCode.NativeLoad, message),
});
