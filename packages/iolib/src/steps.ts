// The operations of iolib on mounted paths, written once as generators of
// service calls and run either blocking (the sync API: each call is one
// blocking request on the channel) or not (promises and callbacks). A
// generator yields [mount, operation, arguments]; the runner makes the call
// with the mount's client and sends the result (or throws the error) back.
// A step on the host's own files (copyFile to or from a mount) yields its
// node:fs call in both forms instead.
import { EntryType, FsError, hasCode } from '@polytropon/libservice';
import type { Libservice } from '@polytropon/libservice';
import { constants } from 'node:fs';
import type { IoServiceClient } from '@polytropon/ioservice';
import type { Mount } from './mounts.js';

export type Operation = Exclude<keyof Libservice, 'unmount'>;
/** A step on the host's own files (node:fs), for operations with one end outside the mounts. */
export interface HostCall {
  sync: () => unknown;
  async: () => Promise<unknown>;
}
export type Call = [mount: Mount, op: Operation, args: unknown[]] | HostCall;
export type Steps<T> = Generator<Call, T, unknown>;

/** One call of the service, inside a generator: `const st = yield* call(m, 'stat', path)`. */
export function* call<K extends Operation>(mount: Mount, op: K, ...args: Parameters<Libservice[K]>): Generator<Call, Awaited<ReturnType<Libservice[K]>>, unknown> {
  return (yield [mount, op, args]) as Awaited<ReturnType<Libservice[K]>>;
}

/** One call of node:fs on a host path, in the form the runner needs: `yield* host(() => readFileSync(p), () => readFile(p))`. */
export function* host<T>(sync: () => T, async: () => Promise<T>): Steps<T> {
  return (yield { sync, async }) as T;
}

function gone(e: unknown, mount: Mount): unknown {
  // The service went away: attach again on the next call (its handles are lost).
  if ((e as { code?: unknown } | null)?.code === 'ERR_IPC_SERVICE_GONE') mount.drop();
  return e;
}

/** The names of the clients' sync twins, made once (not a string built per call). */
const SYNC_NAMES = new Map<string, string>();
const syncName = (op: string): string => SYNC_NAMES.get(op) ?? (SYNC_NAMES.set(op, `${op}Sync`), `${op}Sync`);

type Methods = Record<string, (...a: unknown[]) => unknown>;

/** Performs one step: on this thread with `sync`, else its promise. */
function perform(step: Call, sync: boolean): unknown {
  if (!Array.isArray(step)) return sync ? step.sync() : step.async();
  const [mount, op, args] = step;
  const client = mount.client as unknown as Methods;
  return client[sync ? syncName(op) : op]!(...args);
}

/**
 * One call of the service made at once on this thread (`use` calls one of
 * the client's sync twins): what `runSync` of a step with that one call
 * does, without the generators. The sync forms of the operations
 * applications make most (stat, open, read, write, close) use it; the
 * generators cost about 0.25 µs a call, and naming the method by a string
 * (a lookup the engine cannot specialize) and spreading its arguments
 * another 0.1.
 */
export function onClient<T>(mount: Mount, use: (client: IoServiceClient) => T): T {
  try {
    return use(mount.client);
  } catch (e) {
    throw gone(e, mount);
  }
}

/** What a failed step throws into its generator. */
const failure = (step: Call, e: unknown): unknown => (Array.isArray(step) ? gone(e, step[0]) : e);

export function runSync<T>(steps: Steps<T>): T {
  let r = steps.next();
  while (!r.done) {
    let v: unknown;
    try {
      v = perform(r.value, true);
    } catch (e) {
      r = steps.throw(failure(r.value, e));
      continue;
    }
    r = steps.next(v);
  }
  return r.value;
}

export async function runAsync<T>(steps: Steps<T>): Promise<T> {
  let r = steps.next();
  while (!r.done) {
    let v: unknown;
    try {
      v = await perform(r.value, false);
    } catch (e) {
      r = steps.throw(failure(r.value, e));
      continue;
    }
    r = steps.next(v);
  }
  return r.value;
}

const CHUNK = 1 << 20;

/** Reads a whole open file from its position on. */
export function* readAll(mount: Mount, handle: number): Steps<Buffer> {
  const chunks: Buffer[] = [];
  for (;;) {
    const buf = Buffer.allocUnsafe(CHUNK);
    const n = yield* call(mount, 'read', handle, buf, 0, CHUNK, null);
    if (n === 0) break;
    chunks.push(n === CHUNK ? buf : buf.subarray(0, n));
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/** Writes all of `data` at the handle's position. */
export function* writeAll(mount: Mount, handle: number, data: Uint8Array, position: number | null = null): Steps<void> {
  for (let done = 0; done < data.byteLength; ) {
    const len = Math.min(CHUNK, data.byteLength - done);
    done += yield* call(mount, 'write', handle, data, done, len, position === null ? null : position + done);
  }
}

/** readFile: open, read to the end, close. */
export function* readFile(mount: Mount, path: string): Steps<Buffer> {
  const h = yield* call(mount, 'open', path, constants.O_RDONLY, 0o666);
  try {
    return yield* readAll(mount, h);
  } finally {
    yield* call(mount, 'close', h);
  }
}

/** writeFile / appendFile: open with `flags`, write everything, close. */
export function* writeFile(mount: Mount, path: string, data: Uint8Array, flags: number, mode: number): Steps<void> {
  const h = yield* call(mount, 'open', path, flags, mode);
  try {
    yield* writeAll(mount, h, data);
  } finally {
    yield* call(mount, 'close', h);
  }
}

const parents = (path: string): string[] => {
  const parts = path.split('/').filter((c) => c !== '');
  return parts.map((_, i) => '/' + parts.slice(0, i + 1).join('/'));
};

/** mkdir -p: returns the first directory it made (instance path), undefined if none. */
export function* mkdirRecursive(mount: Mount, path: string, mode: number): Steps<string | undefined> {
  let first: string | undefined;
  for (const p of parents(path)) {
    try {
      yield* call(mount, 'mkdir', p, mode);
      first ??= p;
    } catch (e) {
      if (!hasCode(e, 'EEXIST')) throw e;
      const st = yield* call(mount, 'stat', p);
      // As node:fs: the path itself a file is EEXIST, a file on the way ENOTDIR.
      if ((st.mode & constants.S_IFMT) !== constants.S_IFDIR) throw new FsError(p === path ? 'EEXIST' : 'ENOTDIR', 'mkdir', path);
    }
  }
  return first;
}

/** rm: a file, or with `recursive` a directory and all in it; `force` ignores a missing path. */
export function* rm(mount: Mount, path: string, recursive: boolean, force: boolean): Steps<void> {
  let st;
  try {
    st = yield* call(mount, 'lstat', path);
  } catch (e) {
    if (force && hasCode(e, 'ENOENT')) return;
    throw e;
  }
  if ((st.mode & constants.S_IFMT) !== constants.S_IFDIR) return yield* call(mount, 'unlink', path);
  if (!recursive) {
    throw Object.assign(new Error(`Path is a directory: rm returned EISDIR (is a directory) ${path}`), { code: 'ERR_FS_EISDIR', errno: 21, syscall: 'rm', path });
  }
  for (const e of yield* call(mount, 'readdir', path)) {
    const child = (path === '/' ? '' : path) + '/' + e.name;
    if (e.type === EntryType.Directory) yield* rm(mount, child, true, force);
    else yield* call(mount, 'unlink', child);
  }
  if (path !== '/') yield* call(mount, 'rmdir', path);
}

/** realpath within an instance: every symlink resolved (absolute targets from the instance's root). */
export function* realpath(mount: Mount, path: string): Steps<string> {
  const queue = path.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (queue.length > 0) {
    const name = queue.shift() as string;
    if (name === '..') {
      done.pop();
      continue;
    }
    const p = '/' + [...done, name].join('/');
    const st = yield* call(mount, 'lstat', p);
    if ((st.mode & constants.S_IFMT) !== constants.S_IFLNK) {
      done.push(name);
      continue;
    }
    if (++links > 40) throw new FsError('ELOOP', 'realpath', path);
    const target = yield* call(mount, 'readlink', p);
    if (target.startsWith('/')) done.length = 0;
    queue.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
  }
  return '/' + done.join('/');
}
