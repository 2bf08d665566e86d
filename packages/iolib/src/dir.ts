// fs.Dir for a mounted directory (opendir): its entries as listed when it
// was opened, handed out one at a time, as node:fs's Dir reads them from
// the kernel in batches.
import type { IoDirent } from './records.js';

function closedError(): Error {
  return Object.assign(new Error('Directory handle was closed'), { code: 'ERR_DIR_CLOSED' });
}

/** A mounted directory opened with `opendir`, shaped like node:fs's `Dir`. */
export class IoDir {
  /** The path it was opened with. */
  readonly path: string;
  readonly #entries: IoDirent[];
  #next = 0;
  #closed = false;

  constructor(path: string, entries: IoDirent[]) {
    this.path = path;
    this.#entries = entries;
  }

  /** The next entry, or null after the last. */
  readSync(): IoDirent | null {
    if (this.#closed) throw closedError();
    return this.#entries[this.#next++] ?? null;
  }

  /** The next entry, or null after the last; with a callback, node:fs's callback form. */
  read(): Promise<IoDirent | null>;
  read(cb: (err: Error | null, entry?: IoDirent | null) => void): void;
  read(cb?: (err: Error | null, entry?: IoDirent | null) => void): Promise<IoDirent | null> | void {
    // Closed: a rejection or the callback's error (Node 22 and later; 20 threw).
    const p = new Promise<IoDirent | null>((resolve) => resolve(this.readSync()));
    if (!cb) return p;
    p.then((e) => cb(null, e), (e: Error) => cb(e));
  }

  /** Closes it; a second close throws ERR_DIR_CLOSED. */
  closeSync(): void {
    if (this.#closed) throw closedError();
    this.#closed = true;
  }

  /** Closes it; with a callback, node:fs's callback form. */
  close(): Promise<void>;
  close(cb: (err: Error | null) => void): void;
  close(cb?: (err: Error | null) => void): Promise<void> | void {
    // Closed: a rejection or the callback's error (node:fs's Dir; read throws).
    const p = new Promise<void>((resolve) => resolve(this.closeSync()));
    if (!cb) return p;
    p.then(() => cb(null), (e: Error) => cb(e));
  }

  /** Entries until the last, then closes (as node:fs's Dir). */
  async *[Symbol.asyncIterator](): AsyncGenerator<IoDirent> {
    try {
      for (let e = this.readSync(); e !== null; e = this.readSync()) yield e;
    } finally {
      if (!this.#closed) this.closeSync();
    }
  }

  /** The same as iterating the Dir (node:fs's alias). */
  entries(): AsyncGenerator<IoDirent> {
    return this[Symbol.asyncIterator]();
  }

  /** Closes it unless closed (`using`). */
  [Symbol.dispose](): void {
    if (!this.#closed) this.closeSync();
  }

  /** Closes it unless closed (`await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#closed) this.closeSync();
  }
}
