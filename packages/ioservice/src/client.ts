// A libservice that is a filesystem instance of an I/O service, reached
// over its shared-memory channel: what iolib stands on, and what a test or
// a tool uses to talk to a service directly. Arguments are checked here,
// before a request is sent; errors come back as `-errno` and are rebuilt
// here in node:fs's shape, with the caller's paths.
import { FrontDriver, Opcode, decodeResult, encodeRequest } from '@polytropon/ipc';
import type { FrontDriverOptions, Message } from '@polytropon/ipc';
import { FsError, checkHandle, checkIo, checkNumber, splitPath } from '@polytropon/libservice';
import type { DirEntry, EntryType, Libservice, RenameOptions, StatFsRecord, StatRecord } from '@polytropon/libservice';
import { constants } from 'node:fs';
import { codeOf } from './errno.js';

export class IoServiceClient implements Libservice {
  readonly #front: FrontDriver;
  readonly #prefix: string;
  #detached = false;

  private constructor(front: FrontDriver, instance: string) {
    this.#front = front;
    this.#prefix = '/' + instance;
  }

  /** Attaches to the service at `endpoint` and addresses its instance `instance`. */
  static attach(endpoint: string, instance: string, options?: FrontDriverOptions): IoServiceClient {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(instance)) throw Object.assign(new TypeError(`invalid instance name '${instance}'`), { code: 'ERR_INVALID_ARG_VALUE' });
    return new IoServiceClient(FrontDriver.attach(endpoint, options), instance);
  }

  #path(path: string, name = 'path'): string {
    splitPath(path, name);
    return path === '/' ? this.#prefix : this.#prefix + path;
  }

  async #call(op: Opcode, msg: Message, syscall: string, path?: string, dest?: string): Promise<Message> {
    // Detached: the service closed this client's handles; paths are unreachable.
    if (this.#detached) throw new FsError('fd' in msg ? 'EBADF' : 'ENOTCONN', syscall, path, dest);
    const reply = await this.#front.callAsync(op, encodeRequest(op, msg));
    if (reply.status < 0) throw new FsError(codeOf(-reply.status), syscall, path, dest);
    return reply.data.length === 0 ? {} : decodeResult(op, reply.data);
  }

  async open(path: string, flags: number, mode = 0o666): Promise<number> {
    const m = await this.#call(Opcode.Open, { path: this.#path(path), flags: checkNumber(flags, 'flags'), mode: checkNumber(mode, 'mode') }, 'open', path);
    return m.fd as number;
  }

  async close(handle: number): Promise<void> {
    await this.#call(Opcode.Close, { fd: checkHandle(handle) }, 'close');
  }

  async read(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number> {
    checkIo(buffer, offset, length, position);
    const m = await this.#call(Opcode.Read, { fd: checkHandle(handle), length, position: position ?? -1 }, 'read');
    const data = m.data as Buffer;
    buffer.set(data, offset);
    return data.length;
  }

  async write(handle: number, buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number> {
    checkIo(buffer, offset, length, position);
    const m = await this.#call(Opcode.Write, { fd: checkHandle(handle), position: position ?? -1, data: Buffer.from(buffer.buffer, buffer.byteOffset + offset, length) }, 'write');
    return m.written as number;
  }

  async stat(path: string): Promise<StatRecord> {
    return (await this.#call(Opcode.Stat, { path: this.#path(path) }, 'stat', path)) as unknown as StatRecord;
  }

  async lstat(path: string): Promise<StatRecord> {
    return (await this.#call(Opcode.Lstat, { path: this.#path(path) }, 'lstat', path)) as unknown as StatRecord;
  }

  async fstat(handle: number): Promise<StatRecord> {
    return (await this.#call(Opcode.Fstat, { fd: checkHandle(handle) }, 'fstat')) as unknown as StatRecord;
  }

  async readdir(path: string): Promise<DirEntry[]> {
    const m = await this.#call(Opcode.Readdir, { path: this.#path(path) }, 'scandir', path);
    return (m.entries as { name: string; type: number }[]).map((e) => ({ name: e.name, type: e.type as EntryType }));
  }

  async mkdir(path: string, mode = 0o777): Promise<void> {
    await this.#call(Opcode.Mkdir, { path: this.#path(path), mode: checkNumber(mode, 'mode') }, 'mkdir', path);
  }

  async rmdir(path: string): Promise<void> {
    await this.#call(Opcode.Rmdir, { path: this.#path(path) }, 'rmdir', path);
  }

  async unlink(path: string): Promise<void> {
    await this.#call(Opcode.Unlink, { path: this.#path(path) }, 'unlink', path);
  }

  async rename(from: string, to: string, options: RenameOptions = {}): Promise<void> {
    await this.#call(Opcode.Rename, { from: this.#path(from, 'from'), to: this.#path(to, 'to'), flags: options.noReplace === true ? 1 : 0 }, 'rename', from, to);
  }

  async link(existing: string, path: string): Promise<void> {
    await this.#call(Opcode.Link, { existing: this.#path(existing, 'existing'), path: this.#path(path) }, 'link', existing, path);
  }

  async symlink(target: string, path: string): Promise<void> {
    if (typeof target !== 'string' || target.includes('\0')) splitPath(target, 'target');
    await this.#call(Opcode.Symlink, { target, path: this.#path(path) }, 'symlink', target, path);
  }

  async readlink(path: string): Promise<string> {
    return (await this.#call(Opcode.Readlink, { path: this.#path(path) }, 'readlink', path)).target as string;
  }

  async truncate(path: string, length: number): Promise<void> {
    await this.#call(Opcode.Truncate, { path: this.#path(path), length: checkNumber(length, 'length') }, 'open', path);
  }

  async ftruncate(handle: number, length: number): Promise<void> {
    await this.#call(Opcode.Ftruncate, { fd: checkHandle(handle), length: checkNumber(length, 'length') }, 'ftruncate');
  }

  async fsync(handle: number): Promise<void> {
    await this.#call(Opcode.Fsync, { fd: checkHandle(handle) }, 'fsync');
  }

  async fdatasync(handle: number): Promise<void> {
    await this.#call(Opcode.Fdatasync, { fd: checkHandle(handle) }, 'fdatasync');
  }

  async chmod(path: string, mode: number): Promise<void> {
    await this.#call(Opcode.Chmod, { path: this.#path(path), mode: checkNumber(mode, 'mode') }, 'chmod', path);
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    await this.#call(Opcode.Chown, { path: this.#path(path), uid: checkNumber(uid, 'uid'), gid: checkNumber(gid, 'gid') }, 'chown', path);
  }

  async utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    await this.#call(Opcode.Utimes, { path: this.#path(path), atimeMs, mtimeMs }, 'utime', path);
  }

  async access(path: string, mode: number = constants.F_OK): Promise<void> {
    await this.#call(Opcode.Access, { path: this.#path(path), mode: checkNumber(mode, 'mode') }, 'access', path);
  }

  async statfs(path: string): Promise<StatFsRecord> {
    return (await this.#call(Opcode.Statfs, { path: this.#path(path) }, 'statfs', path)) as unknown as StatFsRecord;
  }

  /** Detaches from the service, which closes every handle this client held. */
  async unmount(): Promise<void> {
    if (this.#detached) return;
    this.#detached = true;
    this.#front.detach();
  }
}
