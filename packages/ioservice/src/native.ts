// The service's native end of its channel (native/src/lib.rs): answers
// stat, lstat and readdir of local-directory instances in its take loop.
// Optional: without the binary the service serves everything in JS.
import { loadNativeBinding } from '@polytropon/native-loader';

type Binding = typeof import('../native.js');
export type NativeService = import('../native.js').NativeService;

let binding: Binding | Error | undefined;

/** The binding, or the error explaining why it did not load. */
export function nativeBinding(): Binding | Error {
  if (binding === undefined) {
    try {
      binding = loadNativeBinding<Binding>({
        binaryName: 'ioservice',
        packageName: '@polytropon/ioservice',
        from: import.meta.url,
        onFailure: (message) => Object.assign(new Error(message), { code: 'ERR_IOSERVICE_NATIVE_LOAD' }),
      });
    } catch (e) {
      binding = e as Error;
    }
  }
  return binding;
}
