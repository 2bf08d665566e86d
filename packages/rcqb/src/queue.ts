import { native, type NativeQueue, type NativeStats } from './native.js';
import { fromNative, RcqbError, RcqbErrorCode } from './errors.js';
import { CreateOptions, OpenOptions, QueueName, parse } from './options.js';

/**
 * What another worker thread or process needs to reach a queue; plain data,
 * so it passes through `postMessage`, `workerData` or JSON.
 */
export type RcqbHandle =
  | { readonly kind: 'named'; readonly name: string }
  | { readonly kind: 'anonymous'; readonly id: number; readonly pid: number };

/** Options of the blocking forms: `timeout` in milliseconds (default: wait forever). */
export interface WaitOptions {
  timeout?: number;
}

/** Options of the async forms. */
export interface AsyncWaitOptions extends WaitOptions {
  signal?: AbortSignal;
}

/** Counters shared by every participant of a queue. */
export type RcqbStats = NativeStats;

function call<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw fromNative(e);
  }
}

function bytes(item: unknown): Uint8Array {
  if (item instanceof Uint8Array) return item;
  throw new RcqbError(RcqbErrorCode.InvalidArgument, 'item must be a Uint8Array or Buffer');
}

function timeoutOf(opts: WaitOptions | undefined): number {
  const t = opts?.timeout;
  if (t === undefined || t === Infinity) return -1;
  if (typeof t === 'number' && t >= 0) return t;
  throw new RcqbError(RcqbErrorCode.InvalidArgument, `timeout must be a number of milliseconds >= 0, got ${String(t)}`);
}

function safeInteger(v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  throw new RcqbError(RcqbErrorCode.InvalidArgument, `value must be a safe integer, got ${String(v)}`);
}

/**
 * A handle on an RCQB queue: a bounded, blocking multi-producer
 * multi-consumer queue of byte items in shared memory.
 *
 * Create it in one thread or process, reach it from others with
 * {@link Rcqb.attach} (worker threads) or {@link Rcqb.open} (processes, by name).
 * Blocking calls block the calling thread; the `*Async` twins never block
 * the event loop.
 */
export class Rcqb {
  readonly #native: NativeQueue;
  /** This thread's fast-path id: the hot operations are plain native functions. */
  readonly #h: number;
  #scratch: Buffer | undefined;

  private constructor(nq: NativeQueue) {
    this.#native = nq;
    this.#h = nq.handle;
  }

  /**
   * Creates a queue. With `name`, in a new shared-memory segment (mode 0600)
   * that other processes of the same user can {@link Rcqb.open}; without,
   * in memory shared only with this process's worker threads.
   *
   * @throws RcqbError `ERR_RCQB_INVALID_ARGUMENT`, `ERR_RCQB_EXISTS`
   */
  static create(options: CreateOptions): Rcqb {
    const o = parse(CreateOptions, options, 'Rcqb.create options');
    return new Rcqb(call(() => native.NativeQueue.create(o.capacity, o.itemSize, o.name ?? null, o.spinNs)));
  }

  /**
   * Opens a named queue that another process (or this one) created, and
   * validates its layout.
   *
   * @throws RcqbError `ERR_RCQB_NOT_FOUND`, `ERR_RCQB_BAD_LAYOUT`
   */
  static open(name: string, options: OpenOptions = {}): Rcqb {
    const n = parse(QueueName, name, 'queue name');
    const o = parse(OpenOptions, options, 'Rcqb.open options');
    return new Rcqb(call(() => native.NativeQueue.open(n, o.spinNs)));
  }

  /**
   * Reaches a queue from its {@link Rcqb.handle}: a named queue from any
   * process, an anonymous one from any worker thread of the creating process.
   */
  static attach(handle: RcqbHandle, options: OpenOptions = {}): Rcqb {
    if (handle?.kind === 'named') return Rcqb.open(handle.name, options);
    if (handle?.kind === 'anonymous' && Number.isInteger(handle.id)) {
      if (handle.pid !== process.pid) {
        throw new RcqbError(
          RcqbErrorCode.InvalidArgument,
          'an anonymous queue is reachable only from threads of the process that created it; create it with a name to share it with other processes',
        );
      }
      return new Rcqb(call(() => native.NativeQueue.attach(handle.id)));
    }
    throw new RcqbError(RcqbErrorCode.InvalidArgument, 'not an RcqbHandle');
  }

  /** Removes a named queue's name; open handles keep working. */
  static unlink(name: string): void {
    const n = parse(QueueName, name, 'queue name');
    call(() => native.NativeQueue.unlink(n));
  }

  /** Plain data that {@link Rcqb.attach} turns back into a handle elsewhere. */
  get handle(): RcqbHandle {
    const name = this.#native.name;
    return name === null ? { kind: 'anonymous', id: this.#native.id, pid: process.pid } : { kind: 'named', name };
  }

  /** The shared-memory name (`/name`), or `null` for an anonymous queue. */
  get name(): string | null {
    return this.#native.name;
  }
  /** Number of slots. */
  get capacity(): number {
    return this.#native.capacity;
  }
  /** Largest item, in bytes. */
  get itemSize(): number {
    return this.#native.itemSize;
  }
  /** Items queued, approximately (exact when no operation is in flight). */
  get length(): number {
    return this.#native.length;
  }
  /** Whether any participant has called {@link Rcqb.close}. */
  get closed(): boolean {
    return this.#native.closed;
  }
  /** Counters shared by every participant. */
  stats(): RcqbStats {
    return this.#native.stats();
  }

  /**
   * Enqueues a copy of `item`, blocking this thread while the queue is full.
   *
   * @throws RcqbError `ERR_RCQB_TIMEOUT`, `ERR_RCQB_CLOSED`, `ERR_RCQB_ITEM_TOO_LARGE`
   */
  enqueue(item: Uint8Array, options?: WaitOptions): void {
    const b = bytes(item);
    const t = timeoutOf(options);
    call(() => native.qEnqueue(this.#h, b, t));
  }

  /** Enqueues a copy of `item` if there is room now; false if full. */
  tryEnqueue(item: Uint8Array): boolean {
    const b = bytes(item);
    return call(() => native.qTryEnqueue(this.#h, b));
  }

  /**
   * Dequeues an item into `buffer` (at least {@link Rcqb.itemSize} bytes),
   * blocking while the queue is empty; returns the item's length.
   *
   * @throws RcqbError `ERR_RCQB_TIMEOUT`, `ERR_RCQB_CLOSED` (closed and drained)
   */
  dequeueInto(buffer: Uint8Array, options?: WaitOptions): number {
    const b = bytes(buffer);
    const t = timeoutOf(options);
    return call(() => native.qDequeueInto(this.#h, b, t));
  }

  /** Dequeues into `buffer` if an item is there now; its length, or `undefined`. */
  tryDequeueInto(buffer: Uint8Array): number | undefined {
    const b = bytes(buffer);
    const n = call(() => native.qTryDequeueInto(this.#h, b));
    return n < 0 ? undefined : n;
  }

  /** Dequeues an item as a new Buffer, blocking while the queue is empty. */
  dequeue(options?: WaitOptions): Buffer {
    const s = this.#scratchBuffer();
    const n = this.dequeueInto(s, options);
    return Buffer.from(s.subarray(0, n));
  }

  /** Dequeues an item as a new Buffer if one is there now. */
  tryDequeue(): Buffer | undefined {
    const s = this.#scratchBuffer();
    const n = this.tryDequeueInto(s);
    return n === undefined ? undefined : Buffer.from(s.subarray(0, n));
  }

  /** Fast path for 64-bit items (item size >= 8): enqueues a safe integer. */
  enqueueNumber(value: number, options?: WaitOptions): void {
    const v = safeInteger(value);
    const t = timeoutOf(options);
    call(() => native.qEnqueueNumber(this.#h, v, t));
  }

  /** Enqueues a safe integer if there is room now. */
  tryEnqueueNumber(value: number): boolean {
    const v = safeInteger(value);
    return call(() => native.qTryEnqueueNumber(this.#h, v));
  }

  /** Fast path for 64-bit items: dequeues one, blocking while empty. */
  dequeueNumber(options?: WaitOptions): number {
    const t = timeoutOf(options);
    return call(() => native.qDequeueNumber(this.#h, t));
  }

  /** Dequeues a 64-bit item if one is there now. */
  tryDequeueNumber(): number | undefined {
    return call(() => native.qTryDequeueNumber(this.#h)) ?? undefined;
  }

  /**
   * Enqueues a copy of `item` without blocking the event loop (the wait runs
   * on the libuv thread pool). Rejects with `ERR_RCQB_ABORTED` when `signal`
   * aborts, within about 20 ms.
   */
  async enqueueAsync(item: Uint8Array, options?: AsyncWaitOptions): Promise<void> {
    const b = bytes(item);
    const t = timeoutOf(options);
    try {
      options?.signal?.throwIfAborted();
      if (native.qTryEnqueue(this.#h, b)) return;
      await this.#native.enqueueAsync(b, t, options?.signal ?? null);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Dequeues an item as a new Buffer without blocking the event loop.
   * Rejects with `ERR_RCQB_ABORTED` when `signal` aborts, within about 20 ms.
   */
  async dequeueAsync(options?: AsyncWaitOptions): Promise<Buffer> {
    const t = timeoutOf(options);
    try {
      options?.signal?.throwIfAborted();
      const ready = this.tryDequeue();
      if (ready !== undefined) return ready;
      return await this.#native.dequeueAsync(t, options?.signal ?? null);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Closes the queue for every participant: later enqueues fail with
   * `ERR_RCQB_CLOSED`, blocked ones wake and fail, and dequeuers drain what
   * was enqueued before, then fail with `ERR_RCQB_CLOSED`. Idempotent.
   */
  close(): void {
    this.#native.close();
  }

  /** Removes this queue's name (named queues); handles keep working. */
  unlink(): void {
    const name = this.#native.name;
    if (name === null) throw new RcqbError(RcqbErrorCode.InvalidArgument, 'an anonymous queue has no name to unlink');
    Rcqb.unlink(name);
  }

  #scratchBuffer(): Buffer {
    return (this.#scratch ??= Buffer.allocUnsafe(this.#native.itemSize));
  }
}
