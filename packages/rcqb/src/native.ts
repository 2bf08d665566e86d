// Loads the native binding: the local build first (a checkout after
// `pnpm build:native`), then the platform package npm installed beside us.
import { createRequire } from 'node:module';
import { familySync } from './libc.js';
import { RcqbError, RcqbErrorCode } from './errors.js';

export type { NativeQueue, NativeStats } from '../native.js';
/** The shape of the binding, from the declarations `napi build` generates. */
type Binding = typeof import('../native.js');

function platformSuffix(): string {
  const abi = process.platform === 'linux' ? `-${familySync()}` : '';
  return `${process.platform}-${process.arch}${abi}`;
}

function load(): Binding {
  const require = createRequire(import.meta.url);
  const suffix = platformSuffix();
  const candidates = [`../rcqb.${suffix}.node`, `@polytropon/rcqb-${suffix}`];
  const failures: string[] = [];
  for (const id of candidates) {
    try {
      return require(id) as Binding;
    } catch (e) {
      failures.push(`  ${id}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new RcqbError(
    RcqbErrorCode.NativeLoad,
    `@polytropon/rcqb has no native binary for ${suffix}. Tried:\n${failures.join('\n')}\n` +
      'Install on a supported platform (linux-x64-gnu), or build from source with a Rust toolchain: `pnpm build:native`.',
  );
}

/** The native binding, loaded once. */
export const native: Binding = load();
