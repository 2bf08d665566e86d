// The promise API's FileHandle for a mounted file, over the library's own
// descriptor operations.
import * as nodeFs from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import type { IoStats } from './records.js';

type Data = string | Uint8Array;
type Options = BufferEncoding | { encoding?: BufferEncoding | null; flag?: string | number; mode?: number } | null | undefined;
/** FileHandle.createReadStream's options (the descriptor is the handle's). */
export type HandleReadStreamOptions = { encoding?: BufferEncoding | null; autoClose?: boolean; emitClose?: boolean; start?: number; end?: number; highWaterMark?: number; signal?: AbortSignal };
/** FileHandle.createWriteStream's options. */
export type HandleWriteStreamOptions = { encoding?: BufferEncoding | null; autoClose?: boolean; emitClose?: boolean; start?: number; highWaterMark?: number; flush?: boolean; signal?: AbortSignal };
type Callback<T> = (e: Error | null, v?: T, buffer?: unknown) => void;

/** The descriptor operations a handle needs (the library's async forms). */
export interface FileOps {
  read(fd: number, buffer: NodeJS.ArrayBufferView, offset?: number | null, length?: number | null, position?: number | bigint | null): Promise<number>;
  write(fd: number, data: NodeJS.ArrayBufferView | string, offsetOrPosition?: number | null, lengthOrEncoding?: number | BufferEncoding | null, position?: number | null): Promise<number>;
  readv(fd: number, buffers: readonly NodeJS.ArrayBufferView[], position?: number | null): Promise<number>;
  writev(fd: number, buffers: readonly NodeJS.ArrayBufferView[], position?: number | null): Promise<number>;
  close(fd: number): Promise<void>;
  fstat(fd: number): Promise<IoStats>;
  ftruncate(fd: number, len?: number): Promise<void>;
  fchmod(fd: number, mode: number | string): Promise<void>;
  fchown(fd: number, uid: number, gid: number): Promise<void>;
  futimes(fd: number, atime: number | string | Date, mtime: number | string | Date): Promise<void>;
  fsync(fd: number): Promise<void>;
  fdatasync(fd: number): Promise<void>;
  readFile(fd: number, o?: Options): Promise<Buffer | string>;
  writeFile(fd: number, data: Data, o?: Options): Promise<void>;
  appendFile(fd: number, data: Data, o?: Options): Promise<void>;
}

/** A mounted file opened with `promises.open`, shaped like node:fs's FileHandle. */
export class IoFileHandle {
  #fd: number;
  readonly #ops: FileOps;

  constructor(fd: number, ops: FileOps) {
    this.#fd = fd;
    this.#ops = ops;
  }

  /** The descriptor; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** The descriptor for a call; once closed, node:fs's FileHandle error ('file closed', EBADF). */
  #open(syscall: string): number {
    if (this.#fd === -1) throw Object.assign(new Error('file closed'), { code: 'EBADF', syscall });
    return this.#fd;
  }

  async read<T extends NodeJS.ArrayBufferView = Buffer>(buffer?: T, offset?: number | null, length?: number | null, position?: number | null): Promise<{ bytesRead: number; buffer: T }> {
    const b = buffer ?? (Buffer.alloc(16384) as unknown as T);
    return { bytesRead: await this.#ops.read(this.#open('read'), b, offset, length, position), buffer: b };
  }

  async write<T extends NodeJS.ArrayBufferView | string>(data: T, offsetOrPosition?: number | null, lengthOrEncoding?: number | BufferEncoding | null, position?: number | null): Promise<{ bytesWritten: number; buffer: T }> {
    return { bytesWritten: await this.#ops.write(this.#open('write'), data, offsetOrPosition, lengthOrEncoding, position), buffer: data };
  }

  async readv<T extends readonly NodeJS.ArrayBufferView[]>(buffers: T, position?: number | null): Promise<{ bytesRead: number; buffers: T }> {
    return { bytesRead: await this.#ops.readv(this.#open('readv'), buffers, position), buffers };
  }

  async writev<T extends readonly NodeJS.ArrayBufferView[]>(buffers: T, position?: number | null): Promise<{ bytesWritten: number; buffers: T }> {
    return { bytesWritten: await this.#ops.writev(this.#open('writev'), buffers, position), buffers };
  }

  async readFile(o?: Options): Promise<Buffer | string> {
    return this.#ops.readFile(this.#open('read'), o);
  }
  async writeFile(data: Data, o?: Options): Promise<void> {
    return this.#ops.writeFile(this.#open('write'), data, o);
  }
  async appendFile(data: Data, o?: Options): Promise<void> {
    return this.#ops.appendFile(this.#open('write'), data, o);
  }
  async stat(): Promise<IoStats> {
    return this.#ops.fstat(this.#open('fstat'));
  }
  async truncate(len = 0): Promise<void> {
    return this.#ops.ftruncate(this.#open('ftruncate'), len);
  }
  async chmod(mode: number | string): Promise<void> {
    return this.#ops.fchmod(this.#open('fchmod'), mode);
  }
  async chown(uid: number, gid: number): Promise<void> {
    return this.#ops.fchown(this.#open('fchown'), uid, gid);
  }
  /** Times as node:fs takes them: seconds, numeric strings or Dates. */
  async utimes(atime: number | string | Date, mtime: number | string | Date): Promise<void> {
    return this.#ops.futimes(this.#open('futime'), atime, mtime);
  }
  async sync(): Promise<void> {
    return this.#ops.fsync(this.#open('fsync'));
  }
  async datasync(): Promise<void> {
    return this.#ops.fdatasync(this.#open('fdatasync'));
  }

  /**
   * node:fs's own ReadStream over this handle; with `autoClose` (the
   * default) the stream closes the handle when it ends or fails.
   */
  createReadStream(o: HandleReadStreamOptions = {}): nodeFs.ReadStream {
    return nodeFs.createReadStream(null as never, { ...o, fd: this.#open('read'), fs: this.#streamFs() } as never);
  }

  /** node:fs's own WriteStream over this handle (closing it at the end, with `autoClose`). */
  createWriteStream(o: HandleWriteStreamOptions = {}): nodeFs.WriteStream {
    return nodeFs.createWriteStream(null as never, { ...o, fd: this.#open('write'), fs: this.#streamFs() } as never);
  }

  /** The file's lines, as FileHandle.readLines gives them (a readline interface over a read stream). */
  readLines(o: HandleReadStreamOptions = {}): Interface {
    return createInterface({ input: this.createReadStream(o), crlfDelay: Infinity });
  }

  /** The callback calls node:fs's streams make on a descriptor, over this handle's operations. */
  #streamFs() {
    const ops = this.#ops;
    const settle = <T>(p: Promise<T>, cb: Callback<T>, extra?: unknown) => void p.then((v) => cb(null, v, extra), (e: Error) => cb(e));
    return {
      open: (_p: unknown, _f: unknown, _m: unknown, cb: Callback<number>) => cb(null, this.#fd),
      read: (fd: number, b: NodeJS.ArrayBufferView, off: number, len: number, pos: number | null, cb: Callback<number>) => settle(ops.read(fd, b, off, len, pos), cb, b),
      write: (fd: number, b: NodeJS.ArrayBufferView, off: number, len: number, pos: number | null, cb: Callback<number>) => settle(ops.write(fd, b, off, len, pos), cb, b),
      writev: (fd: number, bs: NodeJS.ArrayBufferView[], pos: number | null, cb: Callback<number>) => settle(ops.writev(fd, bs, pos), cb, bs),
      fsync: (fd: number, cb: Callback<void>) => settle(ops.fsync(fd), cb),
      // The stream's close is the handle's: it is closed once, and says so.
      close: (_fd: number, cb: Callback<void>) => settle(this.close(), cb),
    };
  }

  async close(): Promise<void> {
    if (this.#fd === -1) return;
    const fd = this.#fd;
    this.#fd = -1;
    await this.#ops.close(fd);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
