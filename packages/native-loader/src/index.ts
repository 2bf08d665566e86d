// Loads a Polytropon package's native binding: the local build first (a
// checkout after `pnpm build:native`), then the platform package npm
// installed beside it, and explains what failed.
import { createRequire } from 'node:module';
import { familySync } from './libc.js';

/** What {@link loadNativeBinding} needs to know about the package. */
export interface NativeBindingOptions {
  /** napi `binaryName`: the local file is `../<binaryName>.<platform>.node`. */
  binaryName: string;
  /** The npm package, whose platform packages are `<packageName>-<platform>`. */
  packageName: string;
  /** `import.meta.url` of the module that loads (relative paths start there). */
  from: string;
  /** Makes the package's own error (with its stable code) from the explanation. */
  onFailure: (message: string) => Error;
}

/** `linux-x64-gnu`, the way napi-rs names platform packages and binaries. */
export function platformSuffix(): string {
  const abi = process.platform === 'linux' ? `-${familySync()}` : '';
  return `${process.platform}-${process.arch}${abi}`;
}

/** Loads the binding, or throws `onFailure(explanation)`. */
export function loadNativeBinding<Binding>(options: NativeBindingOptions): Binding {
  const require = createRequire(options.from);
  const suffix = platformSuffix();
  const candidates = [`../${options.binaryName}.${suffix}.node`, `${options.packageName}-${suffix}`];
  const failures: string[] = [];
  for (const id of candidates) {
    try {
      return require(id) as Binding;
    } catch (e) {
      failures.push(`  ${id}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw options.onFailure(
    `${options.packageName} has no native binary for ${suffix}. Tried:\n${failures.join('\n')}\n` +
      'Install on a supported platform (linux-x64-gnu), or build from source with a Rust toolchain: `pnpm build:native`.',
  );
}
