// The service's native end of its channel (native/src/lib.rs): answers
// stat, lstat and readdir of local-directory instances in its take loop.
// Optional: without the binary the service serves everything in JS.
import type { NativeBackEnd } from '@polytropon/ipc';
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

/**
 * The channel end ipc's BackDriver serves, over a native service: its hot
 * operations are the binding's plain functions with the service's number
 * (a Node-API class method costs 330-400 ns a call).
 */
export function backEnd(b: Binding, n: NativeService): NativeBackEnd {
  const h = n.handle;
  return {
    take: (max, spinNs, into) => b.serviceTake(h, max, spinNs, into),
    complete: (index, seq, status, data) => b.serviceComplete(h, index, seq, status, data),
    servedNatively: () => b.serviceServedNatively(h),
    wait: (timeoutMs) => n.wait(timeoutMs),
    reap: () => n.reap(),
    refusals: () => n.refusals(),
    close: () => n.close(),
  };
}
