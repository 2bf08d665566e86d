// The promise API's FileHandle for a mounted file, over the library's own
// descriptor operations.
import type { IoStats } from './records.js';

type Data = string | Uint8Array;
type Options = BufferEncoding | { encoding?: BufferEncoding | null; flag?: string | number; mode?: number } | null | undefined;

/** The descriptor operations a handle needs (the library's async forms). */
export interface FileOps {
  read(fd: number, buffer: NodeJS.ArrayBufferView, offset?: number | null, length?: number | null, position?: number | bigint | null): Promise<number>;
  write(fd: number, data: NodeJS.ArrayBufferView | string, offsetOrPosition?: number | null, lengthOrEncoding?: number | BufferEncoding | null, position?: number | null): Promise<number>;
  readv(fd: number, buffers: readonly NodeJS.ArrayBufferView[], position?: number | null): Promise<number>;
  writev(fd: number, buffers: readonly NodeJS.ArrayBufferView[], position?: number | null): Promise<number>;
  close(fd: number): Promise<void>;
  fstat(fd: number): Promise<IoStats>;
  ftruncate(fd: number, len?: number): Promise<void>;
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

  async read<T extends NodeJS.ArrayBufferView = Buffer>(buffer?: T, offset?: number | null, length?: number | null, position?: number | null): Promise<{ bytesRead: number; buffer: T }> {
    const b = buffer ?? (Buffer.alloc(16384) as unknown as T);
    return { bytesRead: await this.#ops.read(this.#fd, b, offset, length, position), buffer: b };
  }

  async write<T extends NodeJS.ArrayBufferView | string>(data: T, offsetOrPosition?: number | null, lengthOrEncoding?: number | BufferEncoding | null, position?: number | null): Promise<{ bytesWritten: number; buffer: T }> {
    return { bytesWritten: await this.#ops.write(this.#fd, data, offsetOrPosition, lengthOrEncoding, position), buffer: data };
  }

  async readv<T extends readonly NodeJS.ArrayBufferView[]>(buffers: T, position?: number | null): Promise<{ bytesRead: number; buffers: T }> {
    return { bytesRead: await this.#ops.readv(this.#fd, buffers, position), buffers };
  }

  async writev<T extends readonly NodeJS.ArrayBufferView[]>(buffers: T, position?: number | null): Promise<{ bytesWritten: number; buffers: T }> {
    return { bytesWritten: await this.#ops.writev(this.#fd, buffers, position), buffers };
  }

  readFile(o?: Options): Promise<Buffer | string> {
    return this.#ops.readFile(this.#fd, o);
  }
  writeFile(data: Data, o?: Options): Promise<void> {
    return this.#ops.writeFile(this.#fd, data, o);
  }
  appendFile(data: Data, o?: Options): Promise<void> {
    return this.#ops.appendFile(this.#fd, data, o);
  }
  stat(): Promise<IoStats> {
    return this.#ops.fstat(this.#fd);
  }
  truncate(len = 0): Promise<void> {
    return this.#ops.ftruncate(this.#fd, len);
  }
  sync(): Promise<void> {
    return this.#ops.fsync(this.#fd);
  }
  datasync(): Promise<void> {
    return this.#ops.fdatasync(this.#fd);
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
