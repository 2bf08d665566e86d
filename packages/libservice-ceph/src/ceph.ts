// CephFS as a libservice: one mounted libcephfs client (its own sessions
// with the monitors and the MDS, its own metadata and data caches), as the
// per-tenant user-level client of the Danaus paper.
//
// Paths stay beneath `root` (the binding resolves every component itself:
// libcephfs alone lets '..' climb out of its mount root) and follow the
// kernel's rules for trailing slashes and '.'. Each operation is one native
// call: async ones run on libuv's pool, so the event loop never waits for
// the cluster; the `...Sync` twins run on the calling thread.
import { constants } from 'node:fs';
import { z } from 'zod';
import {
  checkHandle,
  checkIo,
  checkNumber,
  checkPath,
  codeOf,
  EntryType,
  FsError,
  parseOptions,
  type DirEntry,
  type PosixCode,
  type Libservice,
  type RenameOptions,
  type StatFsRecord,
  type StatRecord,
  type SyncLibservice,
} from '@polytropon/libservice';
import { fromNative } from './errors.js';
import { native, Op, type NativeClient, type Output } from './native.js';

const { O_CREAT, O_APPEND, O_RDONLY } = constants;
const O_ACCMODE = 3; // not in node:fs's constants

const option = z.union([z.string(), z.number(), z.boolean()]);

/** The options of {@link CephLibservice.create}, as a zod schema (for configurations that embed them). */
export const CephOptions = z.strictObject({
  /** A ceph.conf to read. Without it (and without `monHost`): $CEPH_CONF, then /etc/ceph/ceph.conf. */
  conf: z.string().min(1).optional(),
  /** The monitors ('127.0.0.1:40310', or a list as Ceph writes it): `mon_host`. */
  monHost: z.string().min(1).optional(),
  /** The client's id, without 'client.' ('admin', 'tenant-a'). */
  clientId: z.string().min(1).default('admin'),
  /** The keyring file holding the client's key. */
  keyring: z.string().min(1).optional(),
  /** The client's secret key itself (base64), instead of a keyring. */
  key: z.string().min(1).optional(),
  /** The filesystem to mount; the cluster's default when absent. */
  fsName: z.string().min(1).optional(),
  /** The directory of the filesystem served as '/': one per pool. */
  root: z.string().startsWith('/').default('/'),
  /** Create `root` (and its parents) when it does not exist. */
  createRoot: z.boolean().default(false),
  /** The client's caches: `inodes` (client_cache_size) and `bytes` of file data (client_oc_size). */
  cache: z
    .strictObject({
      inodes: z.number().int().min(1).optional(),
      bytes: z.number().int().min(0).optional(),
    })
    .default({}),
  /** Any other libcephfs options, set last (`{ client_readahead_max_bytes: 4194304 }`). */
  config: z.record(z.string().min(1), option).default({}),
  /** How long connecting may take before it fails with ETIMEDOUT. */
  mountTimeoutMs: z.number().int().min(1000).max(3_600_000).default(30_000),
  /** The user the client acts as (permission checks of the MDS, owner of new files); default: this process's. */
  uid: z.number().int().min(0).optional(),
  gid: z.number().int().min(0).optional(),
  /** Subtracted from the mode of created files and directories, as a process umask. */
  umask: z.number().int().min(0).max(0o777).default(0o022),
  /** How many handles may be open at once; one more open fails with EMFILE. */
  maxHandles: z.number().int().min(1).max(1 << 20).default(65_536),
  /** The libcephfs file to load (default: libcephfs.so.2). The first that loads in a process is the one every client uses. */
  library: z.string().min(1).optional(),
});
export type CephLibserviceOptions = z.input<typeof CephOptions>;

/** One operation for the binding: its arguments, how to name its errors, what to make of its answer. */
interface Call<T> {
  op: Op;
  /** The handle the call uses: a close waits for it. */
  fd?: number;
  a?: string;
  b?: string;
  n0?: number;
  n1?: number;
  n2?: number;
  syscall: string;
  path?: string;
  dest?: string;
  result: (out: Output) => T;
}

const STAT_FIELDS = ['dev', 'ino', 'mode', 'nlink', 'uid', 'gid', 'rdev', 'size', 'blksize', 'blocks', 'atimeMs', 'mtimeMs', 'ctimeMs', 'birthtimeMs'] as const;

function asStat(out: Output): StatRecord {
  const f = out as Float64Array;
  const r = {} as Record<(typeof STAT_FIELDS)[number], number>;
  STAT_FIELDS.forEach((k, i) => (r[k] = f[i] as number));
  return r;
}

function asStatFs(out: Output): StatFsRecord {
  const f = out as Float64Array;
  return { bsize: f[0]!, blocks: f[1]!, bfree: f[2]!, bavail: f[3]!, files: f[4]!, ffree: f[5]! };
}

/** Entries come as `type byte, UTF-8 name, NUL` one after another. */
function asEntries(out: Output): DirEntry[] {
  const b = out as Buffer;
  const entries: DirEntry[] = [];
  for (let i = 0; i < b.length; ) {
    const end = b.indexOf(0, i + 1);
    entries.push({ name: b.toString('utf8', i + 1, end), type: b[i] as EntryType });
    i = end + 1;
  }
  return entries;
}

const none = (): void => undefined;
const asNumber = (out: Output) => out as number;
const asText = (out: Output) => out as string;

/** A libservice on CephFS through libcephfs; see {@link CephLibservice.create}. */
export class CephLibservice implements Libservice, SyncLibservice {
  readonly #client: NativeClient;
  readonly #umask: number;
  readonly #maxHandles: number;
  /** Open handles (the client's descriptors) and the flags they were opened with. */
  readonly #handles = new Map<number, number>();
  #unmounted = false;
  #unmounting: Promise<void> | undefined;
  /**
   * Calls in flight per handle. A close waits for them: libcephfs 16 frees
   * an open file on close even while a read on it waits for the cluster.
   */
  readonly #busy = new Map<number, { calls: number; idle: (() => void)[] }>();
  /** The options it was created with (validated). */
  readonly options: Readonly<z.output<typeof CephOptions>>;

  private constructor(client: NativeClient, options: z.output<typeof CephOptions>) {
    this.#client = client;
    this.#umask = options.umask;
    this.#maxHandles = options.maxHandles;
    this.options = options;
  }

  /**
   * Connects a client to the cluster and mounts `root`. Fails with a
   * CephError: ERR_CEPH_LIBRARY without libcephfs, ERR_CEPH_CONNECT (with
   * `stage` and `errno`) when the cluster cannot be reached or refuses;
   * bad options are ERR_INVALID_ARG_VALUE. Nothing is left connected on failure.
   */
  static async create(options: CephLibserviceOptions): Promise<CephLibservice> {
    const o = parseOptions(CephOptions, options, 'CephLibservice options');
    const uid = o.uid ?? process.getuid?.() ?? 0;
    const gid = o.gid ?? process.getgid?.() ?? 0;
    const set: [string, string][] = [];
    if (o.monHost !== undefined) set.push(['mon_host', o.monHost]);
    if (o.keyring !== undefined) set.push(['keyring', o.keyring]);
    if (o.key !== undefined) set.push(['key', o.key]);
    if (o.cache.inodes !== undefined) set.push(['client_cache_size', String(o.cache.inodes)]);
    if (o.cache.bytes !== undefined) set.push(['client_oc_size', String(o.cache.bytes)]);
    set.push(['client_mount_timeout', String(Math.ceil(o.mountTimeoutMs / 1000))]);
    set.push(['client_mount_uid', String(uid)], ['client_mount_gid', String(gid)]);
    for (const [k, v] of Object.entries(o.config)) set.push([k, String(v)]);
    try {
      const client = await native().connect(o.clientId, o.conf ?? null, set, o.fsName ?? null, o.root, o.createRoot, uid, gid, o.library ?? null);
      return new CephLibservice(client, o);
    } catch (e) {
      throw fromNative(e, `CephLibservice(${o.fsName ?? 'default filesystem'}:${o.root})`);
    }
  }

  /** The version of the libcephfs loaded (loading it), or throws ERR_CEPH_LIBRARY. */
  static libraryVersion(library?: string): string {
    try {
      return native().libraryVersion(library ?? null);
    } catch (e) {
      throw fromNative(e, 'libcephfs');
    }
  }

  /** A configuration value of this client ('client_cache_size'...), or null. */
  config(option: string): string | null {
    return this.#client.confGet(option);
  }

  // --- calls ------------------------------------------------------------------

  /** Throws the FsError for a POSIX code, or for the `-errno` the binding answered. */
  #fail(code: PosixCode | number, c: { syscall: string; path?: string | undefined; dest?: string | undefined }): never {
    throw new FsError(typeof code === 'number' ? codeOf(-code) : code, c.syscall, c.path, c.dest);
  }

  #check<T>(c: Call<T>, out: Output): T {
    if (typeof out === 'number' && out < 0) this.#fail(out, c);
    return c.result(out);
  }

  async #send<T>(c: Call<T>): Promise<T> {
    if (this.#unmounted) this.#fail('ENOTCONN', c);
    const run = () => this.#client.exec(c.op, c.a ?? '', c.b ?? '', c.n0 ?? 0, c.n1 ?? 0, c.n2 ?? 0);
    return this.#check(c, await (c.fd === undefined ? run() : this.#using(c.fd, run)));
  }

  /** Runs a call on a handle, counted in flight. */
  async #using<T>(fd: number, run: () => Promise<T>): Promise<T> {
    let b = this.#busy.get(fd);
    if (!b) this.#busy.set(fd, (b = { calls: 0, idle: [] }));
    b.calls++;
    try {
      return await run();
    } finally {
      if (--b.calls === 0) {
        this.#busy.delete(fd);
        for (const f of b.idle) f();
      }
    }
  }

  /** Settles once no call on `fd` is in flight. */
  #idle(fd: number): Promise<void> {
    const b = this.#busy.get(fd);
    return b ? new Promise((resolve) => b.idle.push(resolve)) : Promise.resolve();
  }

  #sendSync<T>(c: Call<T>): T {
    if (this.#unmounted) this.#fail('ENOTCONN', c);
    return this.#check(c, this.#client.execSync(c.op, c.a ?? '', c.b ?? '', c.n0 ?? 0, c.n1 ?? 0, c.n2 ?? 0));
  }

  #handle(handle: number, syscall: string): number {
    if (!this.#handles.has(checkHandle(handle))) this.#fail('EBADF', { syscall });
    return handle;
  }

  // --- what each operation sends ------------------------------------------------

  #stat(path: string, follow: boolean): Call<StatRecord> {
    checkPath(path);
    return { op: Op.Stat, a: path, n0: follow ? 1 : 0, syscall: follow ? 'stat' : 'lstat', path, result: asStat };
  }

  #open(path: string, flags: number, mode: number): Call<number> {
    checkPath(path);
    checkNumber(flags, 'flags');
    checkNumber(mode, 'mode');
    if (this.#handles.size >= this.#maxHandles) this.#fail('EMFILE', { syscall: 'open', path });
    return { op: Op.Open, a: path, n0: flags, n1: flags & O_CREAT ? mode & ~this.#umask : mode, syscall: 'open', path, result: asNumber };
  }

  #opened(fd: number, flags: number): number {
    if (this.#unmounted) {
      // Not on this thread: the unmount holds the client. It closes what is left.
      void this.#client.exec(Op.Close, '', '', fd, 0, 0);
      this.#fail('ENOTCONN', { syscall: 'open' });
    }
    this.#handles.set(fd, flags);
    return fd;
  }

  /**
   * The position a write goes to: Linux appends on an O_APPEND handle even
   * when given a position, where libcephfs would write there (-1: the
   * handle's position, which libcephfs takes as the end for O_APPEND).
   * Undefined for a zero-length write, which libcephfs refuses (EFBIG)
   * and Linux answers with 0 on a writable handle.
   */
  #writeAt(fd: number, length: number, position: number | null): number | undefined {
    const flags = this.#handles.get(fd) as number;
    if (length === 0) {
      if ((flags & O_ACCMODE) === O_RDONLY) this.#fail('EBADF', { syscall: 'write' });
      return undefined;
    }
    return flags & O_APPEND || position === null ? -1 : position;
  }

  /** Forgets a handle (later calls on it are EBADF) and says how to close its file. */
  #close(handle: number): Call<void> {
    const fd = this.#handle(handle, 'close');
    this.#handles.delete(fd);
    return { op: Op.Close, n0: fd, syscall: 'close', result: none };
  }

  #fstat(handle: number): Call<StatRecord> {
    const fd = this.#handle(handle, 'fstat');
    return { op: Op.Fstat, fd, n0: fd, syscall: 'fstat', result: asStat };
  }

  #readdir(path: string): Call<DirEntry[]> {
    checkPath(path);
    return { op: Op.Readdir, a: path, syscall: 'scandir', path, result: asEntries };
  }

  #mkdir(path: string, mode: number): Call<void> {
    checkPath(path);
    checkNumber(mode, 'mode');
    return { op: Op.Mkdir, a: path, n0: mode & ~this.#umask, syscall: 'mkdir', path, result: none };
  }

  #pathCall(op: Op, syscall: string, path: string, n0 = 0, n1 = 0): Call<void> {
    checkPath(path);
    return { op, a: path, n0, n1, syscall, path, result: none };
  }

  #twoPaths(op: Op, syscall: string, from: string, to: string, n0 = 0): Call<void> {
    checkPath(from);
    checkPath(to);
    return { op, a: from, b: to, n0, syscall, path: from, dest: to, result: none };
  }

  #symlink(target: string, path: string): Call<void> {
    if (typeof target !== 'string' || target.includes('\0')) checkPath(target, 'target');
    checkPath(path);
    return { op: Op.Symlink, a: target, b: path, syscall: 'symlink', path: target, dest: path, result: none };
  }

  #readlink(path: string): Call<string> {
    checkPath(path);
    return { op: Op.Readlink, a: path, syscall: 'readlink', path, result: asText };
  }

  #handleCall(op: Op, syscall: string, handle: number, n1 = 0, n2 = 0): Call<void> {
    const fd = this.#handle(handle, syscall);
    return { op, fd, n0: fd, n1, n2, syscall, result: none };
  }

  #futimes(handle: number, atimeMs: number, mtimeMs: number): Call<void> {
    if (!Number.isFinite(atimeMs) || !Number.isFinite(mtimeMs)) checkNumber(Number.NaN, 'time');
    return this.#handleCall(Op.Futimes, 'futime', handle, atimeMs, mtimeMs);
  }

  #fchown(handle: number, uid: number, gid: number): Call<void> {
    checkNumber(uid, 'uid');
    checkNumber(gid, 'gid');
    return this.#handleCall(Op.Fchown, 'fchown', handle, uid, gid);
  }

  #statfs(path: string): Call<StatFsRecord> {
    checkPath(path);
    return { op: Op.Statfs, a: path, syscall: 'statfs', path, result: asStatFs };
  }

  #ids(path: string, uid: number, gid: number): Call<void> {
    checkNumber(uid, 'uid');
    checkNumber(gid, 'gid');
    return this.#pathCall(Op.Chown, 'chown', path, uid, gid);
  }

  #utimes(path: string, atimeMs: number, mtimeMs: number): Call<void> {
    if (!Number.isFinite(atimeMs) || !Number.isFinite(mtimeMs)) checkNumber(Number.NaN, 'time');
    return this.#pathCall(Op.Utimes, 'utime', path, atimeMs, mtimeMs);
  }

  // --- the contract -------------------------------------------------------------

  async open(path: string, flags: number, mode = 0o666): Promise<number> {
    return this.#opened(await this.#send(this.#open(path, flags, mode)), flags);
  }
  async close(handle: number): Promise<void> {
    const c = this.#close(handle);
    await this.#idle(c.n0!);
    return this.#send(c);
  }
  async read(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number> {
    checkIo(buffer, offset, length, position);
    const fd = this.#handle(handle, 'read');
    const out = await this.#using(fd, () => this.#client.read(fd, length, position ?? -1));
    if (typeof out === 'number') this.#fail(out, { syscall: 'read' });
    buffer.set(out, offset);
    return out.length;
  }
  async write(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number> {
    checkIo(buffer, offset, length, position);
    const fd = this.#handle(handle, 'write');
    const at = this.#writeAt(fd, length, position);
    if (at === undefined) return 0;
    const n = await this.#using(fd, () => this.#client.write(fd, buffer.subarray(offset, offset + length), at));
    if (n < 0) this.#fail(n, { syscall: 'write' });
    return n;
  }
  async stat(path: string): Promise<StatRecord> {
    return this.#send(this.#stat(path, true));
  }
  async lstat(path: string): Promise<StatRecord> {
    return this.#send(this.#stat(path, false));
  }
  async fstat(handle: number): Promise<StatRecord> {
    return this.#send(this.#fstat(handle));
  }
  async readdir(path: string): Promise<DirEntry[]> {
    return this.#send(this.#readdir(path));
  }
  async mkdir(path: string, mode = 0o777): Promise<void> {
    return this.#send(this.#mkdir(path, mode));
  }
  async rmdir(path: string): Promise<void> {
    return this.#send(this.#pathCall(Op.Rmdir, 'rmdir', path));
  }
  async unlink(path: string): Promise<void> {
    return this.#send(this.#pathCall(Op.Unlink, 'unlink', path));
  }
  async rename(from: string, to: string, options: RenameOptions = {}): Promise<void> {
    return this.#send(this.#twoPaths(Op.Rename, 'rename', from, to, options.noReplace === true ? 1 : 0));
  }
  async link(existing: string, path: string): Promise<void> {
    return this.#send(this.#twoPaths(Op.Link, 'link', existing, path));
  }
  async symlink(target: string, path: string): Promise<void> {
    return this.#send(this.#symlink(target, path));
  }
  async readlink(path: string): Promise<string> {
    return this.#send(this.#readlink(path));
  }
  async truncate(path: string, length: number): Promise<void> {
    checkNumber(length, 'length');
    return this.#send(this.#pathCall(Op.Truncate, 'open', path, length));
  }
  async ftruncate(handle: number, length: number): Promise<void> {
    checkNumber(length, 'length');
    return this.#send(this.#handleCall(Op.Ftruncate, 'ftruncate', handle, length));
  }
  async fsync(handle: number): Promise<void> {
    return this.#send(this.#handleCall(Op.Fsync, 'fsync', handle, 0));
  }
  async fdatasync(handle: number): Promise<void> {
    return this.#send(this.#handleCall(Op.Fsync, 'fdatasync', handle, 1));
  }
  async fchmod(handle: number, mode: number): Promise<void> {
    checkNumber(mode, 'mode');
    return this.#send(this.#handleCall(Op.Fchmod, 'fchmod', handle, mode));
  }
  async fchown(handle: number, uid: number, gid: number): Promise<void> {
    return this.#send(this.#fchown(handle, uid, gid));
  }
  async futimes(handle: number, atimeMs: number, mtimeMs: number): Promise<void> {
    return this.#send(this.#futimes(handle, atimeMs, mtimeMs));
  }
  async chmod(path: string, mode: number): Promise<void> {
    checkNumber(mode, 'mode');
    return this.#send(this.#pathCall(Op.Chmod, 'chmod', path, mode));
  }
  async chown(path: string, uid: number, gid: number): Promise<void> {
    return this.#send(this.#ids(path, uid, gid));
  }
  async utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    return this.#send(this.#utimes(path, atimeMs, mtimeMs));
  }
  async access(path: string, mode: number = constants.F_OK): Promise<void> {
    checkNumber(mode, 'mode');
    return this.#send(this.#pathCall(Op.Access, 'access', path, mode));
  }
  async statfs(path: string): Promise<StatFsRecord> {
    return this.#send(this.#statfs(path));
  }

  /**
   * Waits for the calls on handles in flight, closes every handle still
   * open, unmounts and releases the client (libcephfs takes about a second).
   */
  unmount(): Promise<void> {
    this.#unmounted = true;
    this.#unmounting ??= (async () => {
      const open = [...this.#handles.keys()];
      this.#handles.clear();
      await Promise.all([...this.#busy.keys()].map((fd) => this.#idle(fd)));
      await Promise.all(open.map((fd) => this.#client.exec(Op.Close, '', '', fd, 0, 0)));
      await this.#client.exec(Op.Unmount, '', '', 0, 0, 0);
    })();
    return this.#unmounting;
  }

  // --- the sync twins -------------------------------------------------------------

  openSync(path: string, flags: number, mode = 0o666): number {
    return this.#opened(this.#sendSync(this.#open(path, flags, mode)), flags);
  }
  closeSync(handle: number): void {
    const c = this.#close(handle);
    const fd = c.n0!;
    // An async call on it still in flight: its file is closed once that is done.
    if (this.#busy.has(fd)) void this.#idle(fd).then(() => this.#client.exec(Op.Close, '', '', fd, 0, 0));
    else this.#sendSync(c);
  }
  readSync(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number {
    checkIo(buffer, offset, length, position);
    const n = this.#client.readSync(this.#handle(handle, 'read'), buffer.subarray(offset, offset + length), position ?? -1);
    if (n < 0) this.#fail(n, { syscall: 'read' });
    return n;
  }
  writeSync(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number {
    checkIo(buffer, offset, length, position);
    const fd = this.#handle(handle, 'write');
    const at = this.#writeAt(fd, length, position);
    if (at === undefined) return 0;
    const n = this.#client.writeSync(fd, buffer.subarray(offset, offset + length), at);
    if (n < 0) this.#fail(n, { syscall: 'write' });
    return n;
  }
  statSync(path: string): StatRecord {
    return this.#sendSync(this.#stat(path, true));
  }
  lstatSync(path: string): StatRecord {
    return this.#sendSync(this.#stat(path, false));
  }
  fstatSync(handle: number): StatRecord {
    return this.#sendSync(this.#fstat(handle));
  }
  readdirSync(path: string): DirEntry[] {
    return this.#sendSync(this.#readdir(path));
  }
  mkdirSync(path: string, mode = 0o777): void {
    this.#sendSync(this.#mkdir(path, mode));
  }
  rmdirSync(path: string): void {
    this.#sendSync(this.#pathCall(Op.Rmdir, 'rmdir', path));
  }
  unlinkSync(path: string): void {
    this.#sendSync(this.#pathCall(Op.Unlink, 'unlink', path));
  }
  renameSync(from: string, to: string, options: RenameOptions = {}): void {
    this.#sendSync(this.#twoPaths(Op.Rename, 'rename', from, to, options.noReplace === true ? 1 : 0));
  }
  linkSync(existing: string, path: string): void {
    this.#sendSync(this.#twoPaths(Op.Link, 'link', existing, path));
  }
  symlinkSync(target: string, path: string): void {
    this.#sendSync(this.#symlink(target, path));
  }
  readlinkSync(path: string): string {
    return this.#sendSync(this.#readlink(path));
  }
  truncateSync(path: string, length: number): void {
    checkNumber(length, 'length');
    this.#sendSync(this.#pathCall(Op.Truncate, 'open', path, length));
  }
  ftruncateSync(handle: number, length: number): void {
    checkNumber(length, 'length');
    this.#sendSync(this.#handleCall(Op.Ftruncate, 'ftruncate', handle, length));
  }
  fsyncSync(handle: number): void {
    this.#sendSync(this.#handleCall(Op.Fsync, 'fsync', handle, 0));
  }
  fdatasyncSync(handle: number): void {
    this.#sendSync(this.#handleCall(Op.Fsync, 'fdatasync', handle, 1));
  }
  fchmodSync(handle: number, mode: number): void {
    checkNumber(mode, 'mode');
    this.#sendSync(this.#handleCall(Op.Fchmod, 'fchmod', handle, mode));
  }
  fchownSync(handle: number, uid: number, gid: number): void {
    this.#sendSync(this.#fchown(handle, uid, gid));
  }
  futimesSync(handle: number, atimeMs: number, mtimeMs: number): void {
    this.#sendSync(this.#futimes(handle, atimeMs, mtimeMs));
  }
  chmodSync(path: string, mode: number): void {
    checkNumber(mode, 'mode');
    this.#sendSync(this.#pathCall(Op.Chmod, 'chmod', path, mode));
  }
  chownSync(path: string, uid: number, gid: number): void {
    this.#sendSync(this.#ids(path, uid, gid));
  }
  utimesSync(path: string, atimeMs: number, mtimeMs: number): void {
    this.#sendSync(this.#utimes(path, atimeMs, mtimeMs));
  }
  accessSync(path: string, mode: number = constants.F_OK): void {
    checkNumber(mode, 'mode');
    this.#sendSync(this.#pathCall(Op.Access, 'access', path, mode));
  }
  statfsSync(path: string): StatFsRecord {
    return this.#sendSync(this.#statfs(path));
  }
}

