// A libservice that is a filesystem instance of an I/O service, reached
// over its shared-memory channel: what iolib stands on, and what a test or
// a tool uses to talk to a service directly. Every operation also has a
// sync twin (`statSync`...), one blocking call on the channel. Arguments
// are checked here, before a request is sent; errors come back as `-errno`
// and are rebuilt here in node:fs's shape, with the caller's paths.
//
// Async and sync calls go through two front drivers (a driver makes one
// call at a time, and a sync call cannot wait behind an async one); the
// service keeps handles per process, so both see the same handles.
import { FrontDriver, Opcode, PROTOCOL_VERSION, decodeResult, encodeRequest } from '@polytropon/ipc';
import type { FrontDriverOptions, Message, Reply } from '@polytropon/ipc';
import { FsError, checkHandle, checkIo, checkNumber, checkPath } from '@polytropon/libservice';
import type { DirEntry, EntryType, Libservice, RenameOptions, StatFsRecord, StatRecord, SyncLibservice } from '@polytropon/libservice';
import { constants } from 'node:fs';
import { codeOf } from './errno.js';
import { INSTANCE_NAME } from './service.js';


/** One request: what to send, how to name its errors, what to make of the reply. */
interface Call<T> {
  op: Opcode;
  msg: Message;
  syscall: string;
  path?: string | undefined;
  dest?: string | undefined;
  result: (reply: Message) => T;
}

const none = (): void => undefined;
/** Sync requests up to this size are encoded without an allocation. */
const SCRATCH_BYTES = 256 * 1024;
const asStat = (m: Message) => m as unknown as StatRecord;

/** A filesystem instance of an I/O service as a libservice (with sync twins), reached over its channel. */
export class IoServiceClient implements Libservice, SyncLibservice {
  readonly #endpoint: string;
  readonly #options: FrontDriverOptions | undefined;
  readonly #prefix: string;
  readonly #async: FrontDriver;
  /**
   * The driver of sync calls, made on first use, and the buffer sync
   * requests are encoded into (a write's data up to its size; larger ones
   * get a buffer of their own).
   */
  #sync: { driver: FrontDriver; scratch: Buffer } | undefined;
  /** A sync read's reply header (its version byte); the data goes to the caller's buffer. */
  readonly #readHead = new Uint8Array(1);
  #detached = false;

  private constructor(endpoint: string, instance: string, options: FrontDriverOptions | undefined) {
    this.#endpoint = endpoint;
    this.#options = options;
    this.#prefix = '/' + instance;
    this.#async = FrontDriver.attach(endpoint, options);
  }

  /** Attaches to the service at `endpoint` and addresses its instance `instance`. */
  static attach(endpoint: string, instance: string, options?: FrontDriverOptions): IoServiceClient {
    if (!INSTANCE_NAME.test(instance)) throw Object.assign(new TypeError(`invalid instance name '${instance}'`), { code: 'ERR_INVALID_ARG_VALUE' });
    return new IoServiceClient(endpoint, instance, options);
  }

  #path(path: string, name = 'path'): string {
    checkPath(path, name);
    return path === '/' ? this.#prefix : this.#prefix + path;
  }

  #refuseDetached(c: Call<unknown>): void {
    // Detached: the service closed this process's handles; paths are unreachable.
    if (this.#detached) throw new FsError('fd' in c.msg ? 'EBADF' : 'ENOTCONN', c.syscall, c.path, c.dest);
  }

  #reply<T>(c: Call<T>, reply: Reply): T {
    if (reply.status < 0) throw new FsError(codeOf(-reply.status), c.syscall, c.path, c.dest);
    return c.result(reply.data.length === 0 ? {} : decodeResult(c.op, reply.data));
  }

  async #send<T>(c: Call<T>): Promise<T> {
    this.#refuseDetached(c);
    return this.#reply(c, await this.#async.callAsync(c.op, encodeRequest(c.op, c.msg)));
  }

  #sendSync<T>(c: Call<T>): T {
    this.#refuseDetached(c);
    // The request is encoded into a buffer kept for sync calls (the call
    // copies it into the channel before it returns). The reply is a view of
    // the driver's reply buffer: #reply decodes it before the next call.
    const sync = this.#syncEnd();
    return this.#reply(c, sync.driver.callView(c.op, encodeRequest(c.op, c.msg, sync.scratch)));
  }

  #syncEnd(): { driver: FrontDriver; scratch: Buffer } {
    return (this.#sync ??= { driver: FrontDriver.attach(this.#endpoint, this.#options), scratch: Buffer.allocUnsafeSlow(SCRATCH_BYTES) });
  }

  // --- the requests ----------------------------------------------------------

  #open(path: string, flags: number, mode = 0o666): Call<number> {
    const msg = { path: this.#path(path), flags: checkNumber(flags, 'flags'), mode: checkNumber(mode, 'mode') };
    return { op: Opcode.Open, msg, syscall: 'open', path, result: (m) => m.fd as number };
  }
  #close(handle: number): Call<void> {
    return { op: Opcode.Close, msg: { fd: checkHandle(handle) }, syscall: 'close', result: none };
  }
  #read(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Call<number> {
    checkIo(buffer, offset, length, position);
    const msg = { fd: checkHandle(handle), length, position: position ?? -1 };
    const result = (m: Message) => {
      const data = m.data as Buffer;
      buffer.set(data, offset);
      return data.length;
    };
    return { op: Opcode.Read, msg, syscall: 'read', result };
  }
  #write(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Call<number> {
    checkIo(buffer, offset, length, position);
    const msg = { fd: checkHandle(handle), position: position ?? -1, data: Buffer.from(buffer.buffer, buffer.byteOffset + offset, length) };
    return { op: Opcode.Write, msg, syscall: 'write', result: (m) => m.written as number };
  }
  // `extra` is a fresh object literal at every call site: it becomes the
  // message (a spread into a new one cost ~0.1 µs a call).
  #pathCall<T>(op: Opcode, syscall: string, path: string, extra: Message, result: (m: Message) => T): Call<T> {
    extra.path = this.#path(path);
    return { op, msg: extra, syscall, path, result };
  }
  #handleCall<T>(op: Opcode, syscall: string, handle: number, extra: Message, result: (m: Message) => T): Call<T> {
    extra.fd = checkHandle(handle);
    return { op, msg: extra, syscall, result };
  }
  #readdir(path: string): Call<DirEntry[]> {
    return this.#pathCall(Opcode.Readdir, 'scandir', path, {}, (m) => (m.entries as { name: string; type: number }[]).map((e) => ({ name: e.name, type: e.type as EntryType })));
  }
  #rename(from: string, to: string, options: RenameOptions = {}): Call<void> {
    const msg = { from: this.#path(from, 'from'), to: this.#path(to, 'to'), flags: options.noReplace === true ? 1 : 0 };
    return { op: Opcode.Rename, msg, syscall: 'rename', path: from, dest: to, result: none };
  }
  #link(existing: string, path: string): Call<void> {
    return { op: Opcode.Link, msg: { existing: this.#path(existing, 'existing'), path: this.#path(path) }, syscall: 'link', path: existing, dest: path, result: none };
  }
  #symlink(target: string, path: string): Call<void> {
    if (typeof target !== 'string' || target.includes('\0')) checkPath(target, 'target');
    return { op: Opcode.Symlink, msg: { target, path: this.#path(path) }, syscall: 'symlink', path: target, dest: path, result: none };
  }

  // --- async operations (the Libservice contract) ------------------------------

  async open(path: string, flags: number, mode?: number): Promise<number> {
    return this.#send(this.#open(path, flags, mode));
  }
  async close(handle: number): Promise<void> {
    return this.#send(this.#close(handle));
  }
  async read(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number> {
    return this.#send(this.#read(handle, buffer, offset, length, position));
  }
  async write(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number> {
    return this.#send(this.#write(handle, buffer, offset, length, position));
  }
  async stat(path: string): Promise<StatRecord> {
    return this.#send(this.#pathCall(Opcode.Stat, 'stat', path, {}, asStat));
  }
  async lstat(path: string): Promise<StatRecord> {
    return this.#send(this.#pathCall(Opcode.Lstat, 'lstat', path, {}, asStat));
  }
  async fstat(handle: number): Promise<StatRecord> {
    return this.#send(this.#handleCall(Opcode.Fstat, 'fstat', handle, {}, asStat));
  }
  async readdir(path: string): Promise<DirEntry[]> {
    return this.#send(this.#readdir(path));
  }
  async mkdir(path: string, mode = 0o777): Promise<void> {
    return this.#send(this.#pathCall(Opcode.Mkdir, 'mkdir', path, { mode: checkNumber(mode, 'mode') }, none));
  }
  async rmdir(path: string): Promise<void> {
    return this.#send(this.#pathCall(Opcode.Rmdir, 'rmdir', path, {}, none));
  }
  async unlink(path: string): Promise<void> {
    return this.#send(this.#pathCall(Opcode.Unlink, 'unlink', path, {}, none));
  }
  async rename(from: string, to: string, options?: RenameOptions): Promise<void> {
    return this.#send(this.#rename(from, to, options));
  }
  async link(existing: string, path: string): Promise<void> {
    return this.#send(this.#link(existing, path));
  }
  async symlink(target: string, path: string): Promise<void> {
    return this.#send(this.#symlink(target, path));
  }
  async readlink(path: string): Promise<string> {
    return this.#send(this.#pathCall(Opcode.Readlink, 'readlink', path, {}, (m) => m.target as string));
  }
  async truncate(path: string, length: number): Promise<void> {
    return this.#send(this.#pathCall(Opcode.Truncate, 'open', path, { length: checkNumber(length, 'length') }, none));
  }
  async ftruncate(handle: number, length: number): Promise<void> {
    return this.#send(this.#handleCall(Opcode.Ftruncate, 'ftruncate', handle, { length: checkNumber(length, 'length') }, none));
  }
  async fsync(handle: number): Promise<void> {
    return this.#send(this.#handleCall(Opcode.Fsync, 'fsync', handle, {}, none));
  }
  async fdatasync(handle: number): Promise<void> {
    return this.#send(this.#handleCall(Opcode.Fdatasync, 'fdatasync', handle, {}, none));
  }
  async chmod(path: string, mode: number): Promise<void> {
    return this.#send(this.#pathCall(Opcode.Chmod, 'chmod', path, { mode: checkNumber(mode, 'mode') }, none));
  }
  async chown(path: string, uid: number, gid: number): Promise<void> {
    return this.#send(this.#pathCall(Opcode.Chown, 'chown', path, { uid: checkNumber(uid, 'uid'), gid: checkNumber(gid, 'gid') }, none));
  }
  async utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    return this.#send(this.#pathCall(Opcode.Utimes, 'utime', path, { atimeMs, mtimeMs }, none));
  }
  async fchmod(handle: number, mode: number): Promise<void> {
    return this.#send(this.#handleCall(Opcode.Fchmod, 'fchmod', handle, { mode: checkNumber(mode, 'mode') }, none));
  }
  async fchown(handle: number, uid: number, gid: number): Promise<void> {
    return this.#send(this.#handleCall(Opcode.Fchown, 'fchown', handle, { uid: checkNumber(uid, 'uid'), gid: checkNumber(gid, 'gid') }, none));
  }
  async futimes(handle: number, atimeMs: number, mtimeMs: number): Promise<void> {
    return this.#send(this.#handleCall(Opcode.Futimes, 'futime', handle, { atimeMs, mtimeMs }, none));
  }
  async access(path: string, mode: number = constants.F_OK): Promise<void> {
    return this.#send(this.#pathCall(Opcode.Access, 'access', path, { mode: checkNumber(mode, 'mode') }, none));
  }
  async statfs(path: string): Promise<StatFsRecord> {
    return this.#send(this.#pathCall(Opcode.Statfs, 'statfs', path, {}, (m) => m as unknown as StatFsRecord));
  }

  // --- sync twins ------------------------------------------------------------------

  openSync(path: string, flags: number, mode?: number): number {
    return this.#sendSync(this.#open(path, flags, mode));
  }
  closeSync(handle: number): void {
    this.#sendSync(this.#close(handle));
  }
  /**
   * A read's reply (a version byte, then the data) is copied by the driver
   * straight out of the channel: the byte into a header of the client's,
   * the data into `buffer` (no reply buffer, no copy in between).
   */
  readSync(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number {
    checkIo(buffer, offset, length, position);
    const fd = checkHandle(handle);
    if (this.#detached) throw new FsError('EBADF', 'read');
    const sync = this.#syncEnd();
    const request = encodeRequest(Opcode.Read, { fd, length, position: position ?? -1 }, sync.scratch);
    const into = new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length);
    const reply = sync.driver.callSplit(Opcode.Read, request, this.#readHead, into);
    if (reply.status < 0) throw new FsError(codeOf(-reply.status), 'read');
    // An empty reply or another version: the error decoding it gives.
    if (reply.length === 0 || this.#readHead[0] !== PROTOCOL_VERSION) decodeResult(Opcode.Read, Buffer.from(this.#readHead.subarray(0, reply.length)));
    return reply.length - 1;
  }
  writeSync(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number {
    return this.#sendSync(this.#write(handle, buffer, offset, length, position));
  }
  statSync(path: string): StatRecord {
    return this.#sendSync(this.#pathCall(Opcode.Stat, 'stat', path, {}, asStat));
  }
  lstatSync(path: string): StatRecord {
    return this.#sendSync(this.#pathCall(Opcode.Lstat, 'lstat', path, {}, asStat));
  }
  fstatSync(handle: number): StatRecord {
    return this.#sendSync(this.#handleCall(Opcode.Fstat, 'fstat', handle, {}, asStat));
  }
  readdirSync(path: string): DirEntry[] {
    return this.#sendSync(this.#readdir(path));
  }
  mkdirSync(path: string, mode = 0o777): void {
    this.#sendSync(this.#pathCall(Opcode.Mkdir, 'mkdir', path, { mode: checkNumber(mode, 'mode') }, none));
  }
  rmdirSync(path: string): void {
    this.#sendSync(this.#pathCall(Opcode.Rmdir, 'rmdir', path, {}, none));
  }
  unlinkSync(path: string): void {
    this.#sendSync(this.#pathCall(Opcode.Unlink, 'unlink', path, {}, none));
  }
  renameSync(from: string, to: string, options?: RenameOptions): void {
    this.#sendSync(this.#rename(from, to, options));
  }
  linkSync(existing: string, path: string): void {
    this.#sendSync(this.#link(existing, path));
  }
  symlinkSync(target: string, path: string): void {
    this.#sendSync(this.#symlink(target, path));
  }
  readlinkSync(path: string): string {
    return this.#sendSync(this.#pathCall(Opcode.Readlink, 'readlink', path, {}, (m) => m.target as string));
  }
  truncateSync(path: string, length: number): void {
    this.#sendSync(this.#pathCall(Opcode.Truncate, 'open', path, { length: checkNumber(length, 'length') }, none));
  }
  ftruncateSync(handle: number, length: number): void {
    this.#sendSync(this.#handleCall(Opcode.Ftruncate, 'ftruncate', handle, { length: checkNumber(length, 'length') }, none));
  }
  fsyncSync(handle: number): void {
    this.#sendSync(this.#handleCall(Opcode.Fsync, 'fsync', handle, {}, none));
  }
  fdatasyncSync(handle: number): void {
    this.#sendSync(this.#handleCall(Opcode.Fdatasync, 'fdatasync', handle, {}, none));
  }
  chmodSync(path: string, mode: number): void {
    this.#sendSync(this.#pathCall(Opcode.Chmod, 'chmod', path, { mode: checkNumber(mode, 'mode') }, none));
  }
  chownSync(path: string, uid: number, gid: number): void {
    this.#sendSync(this.#pathCall(Opcode.Chown, 'chown', path, { uid: checkNumber(uid, 'uid'), gid: checkNumber(gid, 'gid') }, none));
  }
  utimesSync(path: string, atimeMs: number, mtimeMs: number): void {
    this.#sendSync(this.#pathCall(Opcode.Utimes, 'utime', path, { atimeMs, mtimeMs }, none));
  }
  fchmodSync(handle: number, mode: number): void {
    this.#sendSync(this.#handleCall(Opcode.Fchmod, 'fchmod', handle, { mode: checkNumber(mode, 'mode') }, none));
  }
  fchownSync(handle: number, uid: number, gid: number): void {
    this.#sendSync(this.#handleCall(Opcode.Fchown, 'fchown', handle, { uid: checkNumber(uid, 'uid'), gid: checkNumber(gid, 'gid') }, none));
  }
  futimesSync(handle: number, atimeMs: number, mtimeMs: number): void {
    this.#sendSync(this.#handleCall(Opcode.Futimes, 'futime', handle, { atimeMs, mtimeMs }, none));
  }
  accessSync(path: string, mode: number = constants.F_OK): void {
    this.#sendSync(this.#pathCall(Opcode.Access, 'access', path, { mode: checkNumber(mode, 'mode') }, none));
  }
  statfsSync(path: string): StatFsRecord {
    return this.#sendSync(this.#pathCall(Opcode.Statfs, 'statfs', path, {}, (m) => m as unknown as StatFsRecord));
  }

  /** Detaches from the service, which closes every handle of this process once its last client is gone. */
  async unmount(): Promise<void> {
    if (this.#detached) return;
    this.#detached = true;
    this.#async.detach();
    this.#sync?.driver.detach();
  }
}
