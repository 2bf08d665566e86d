// node --import @polytropon/iolib/register app.js
//
// Routes an unmodified application's `fs` and `fs/promises` calls under the
// mount points to the pool's I/O services. Mounts come from the environment:
//
//   POLYTROPON_MOUNTS='/data=pool-a/data,/srv/cache=pool-a/cache'
//   POLYTROPON_MOUNTS='{"/data": "pool-a/data"}'            (JSON, the same)
//
// node:fs's functions are replaced on the module object (so `fs.readFile`
// and `import { readFile } from 'node:fs'` both route, the latter through
// syncBuiltinESMExports). Node's CommonJS loader calls fs.realpathSync and
// fs.readFileSync through the module object too: for paths outside the
// mounts those go to node:fs's own functions with the loader's arguments
// unchanged (its realpath cache included), so loading works as before.
// The module object itself (the namespace of `import * as` is read-only).
import nodeFs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { createIoLibrary, type IoLibrary } from './library.js';
import type { Mounts } from './mounts.js';

/** Reads POLYTROPON_MOUNTS: JSON, or comma-separated `point=endpoint/instance`. */
export function mountsFromEnvironment(value = process.env.POLYTROPON_MOUNTS): Mounts {
  if (value === undefined || value.trim() === '') return {};
  if (value.trim().startsWith('{')) return JSON.parse(value) as Mounts;
  const mounts: Record<string, string> = {};
  for (const item of value.split(',')) {
    const i = item.indexOf('=');
    if (i <= 0) throw Object.assign(new Error(`POLYTROPON_MOUNTS: '${item}' is not point=endpoint/instance`), { code: 'ERR_INVALID_ARG_VALUE' });
    mounts[item.slice(0, i).trim()] = item.slice(i + 1).trim();
  }
  return mounts;
}

const ROUTED = ['open', 'close', 'read', 'write', 'fstat', 'ftruncate', 'fsync', 'fdatasync', 'readFile', 'writeFile', 'appendFile', 'stat', 'lstat', 'readdir', 'mkdir', 'mkdtemp', 'rm', 'rmdir', 'unlink', 'truncate', 'access', 'chmod', 'chown', 'statfs', 'utimes', 'readlink', 'realpath', 'symlink', 'rename', 'link', 'copyFile', 'cp'] as const;

/** Replaces node:fs's functions with `lib`'s (the register hook does this with the environment's mounts). */
export function install(lib: IoLibrary): void {
  const fs = nodeFs as unknown as Record<string, unknown> & { promises: Record<string, unknown> };
  const l = lib as unknown as Record<string, unknown> & { promises: Record<string, unknown> };
  for (const name of ROUTED) {
    fs[name] = l[name];
    fs[`${name}Sync`] = l[`${name}Sync`];
    fs.promises[name] = l.promises[name];
  }
  // Vectored I/O and the attribute calls on descriptors have no promise
  // form in node:fs (FileHandle has them); opendir has all three.
  for (const name of ['readv', 'writev', 'fchmod', 'fchown', 'futimes', 'opendir']) {
    fs[name] = l[name];
    fs[`${name}Sync`] = l[`${name}Sync`];
  }
  fs.promises.opendir = l.promises.opendir;
  fs.promises.open = l.promises.open;
  // Code that asks for the libc realpath gets the routed one.
  (l.realpathSync as { native?: unknown }).native = l.realpathSync;
  (l.realpath as { native?: unknown }).native = l.realpath;
  for (const name of ['existsSync', 'exists', 'createReadStream', 'createWriteStream', 'watch', 'watchFile', 'unwatchFile']) fs[name] = l[name];
  fs.promises.watch = l.promises.watch;
  syncBuiltinESMExports();
}

const mounts = mountsFromEnvironment();
if (Object.keys(mounts).length > 0) install(createIoLibrary({ mounts }));
