import { setImmediate as immediate } from 'node:timers/promises';
import type { NativeFront } from '../native.js';
import { fromNative, IpcError, IpcErrorCode } from './errors.js';
import { native } from './native.js';
import { checkEndpoint, checkOpcode, FrontDriverOptions, parse } from './options.js';
import { endpointKey, servedHere } from './back.js';
import { StartViews } from './views.js';

/** What a call returns: the service's status (by convention `-errno` on failure) and its reply. */
export interface Reply {
  status: number;
  data: Buffer;
}

const EMPTY = Buffer.alloc(0);

function bytes(payload: Uint8Array | undefined): Uint8Array {
  if (payload === undefined) return EMPTY;
  if (!(payload instanceof Uint8Array)) throw new IpcError(IpcErrorCode.InvalidArgument, 'payload must be a Buffer or Uint8Array');
  return payload;
}

/**
 * The application's end of a channel to an I/O service. Each attached
 * driver owns one request buffer and makes one call at a time: attach one
 * per thread (worker) that calls. Calls from one driver are serialized.
 */
export class FrontDriver {
  readonly #native: NativeFront;
  /** The native driver's number for the `front*` functions (see native/src/lib.rs). */
  readonly #handle: number;
  /** Reused for replies up to its size (a view of it is valid until the next call); larger ones come back whole. */
  #reply = new StartViews(Buffer.allocUnsafe(64 * 1024));
  readonly #len = new Float64Array(1);
  readonly #bufferSize: number;
  /** The async call in flight (calls on one driver run one at a time). */
  #tail: Promise<unknown> = Promise.resolve();
  /** Async calls queued or in flight: a sync call meanwhile is refused. */
  #asyncCalls = 0;
  #pollNs: number;
  readonly #endpoint: string;

  private constructor(n: NativeFront, pollNs: number, endpoint: string) {
    this.#native = n;
    this.#handle = n.handle;
    this.#endpoint = endpoint;
    this.#bufferSize = n.bufferSize();
    this.#pollNs = pollNs;
  }

  /** Attaches to the service at `endpoint` (a shared-memory name). */
  static attach(endpoint: string, options?: FrontDriverOptions): FrontDriver {
    const name = checkEndpoint(endpoint);
    const o = parse(FrontDriverOptions, options, 'FrontDriver options');
    try {
      return new FrontDriver(native.NativeFront.attach(name, o.spinNs, o.queue), o.spinNs, endpointKey(name));
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Sends a request and waits for the reply, blocking this thread: one
   * native call (copy in, post, spin, sleep, copy out). Payloads and
   * replies larger than the request buffer go in fragments.
   */
  call(opcode: number, payload?: Uint8Array): Reply {
    return this.#result(this.#call(opcode, payload), false);
  }

  /**
   * {@link call}, with the reply's `data` a view of this driver's reply
   * buffer instead of a copy: valid until the driver's next call, for a
   * caller that reads or copies it at once. A large reply then costs no
   * allocation (a fresh Buffer of 1 MiB costs ten times its copy here, in
   * page faults).
   */
  callView(opcode: number, payload?: Uint8Array): Reply {
    return this.#result(this.#call(opcode, payload), true);
  }

  /**
   * {@link call}, with the reply copied straight out of the channel into
   * two places: its first `head.length` bytes into `head` (a header), the
   * rest into `body`, the caller's own memory (a read's data: no copy in
   * between, and no reply buffer). Returns the status and the reply's whole
   * length. A reply longer than `head` and `body` together is
   * ERR_IPC_PROTOCOL; `head` and `body` must not share memory.
   */
  callSplit(opcode: number, payload: Uint8Array | undefined, head: Uint8Array, body: Uint8Array): { status: number; length: number } {
    const p = this.#syncPayload(opcode, payload);
    if (!(head instanceof Uint8Array) || !(body instanceof Uint8Array)) throw new IpcError(IpcErrorCode.InvalidArgument, 'head and body must be Buffers or Uint8Arrays');
    try {
      const status = native.frontCallSplit(this.#handle, opcode, p, head, body, this.#len);
      return { status, length: this.#len[0] as number };
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** A sync call's checks: its opcode, its payload, and that it can be made now. */
  #syncPayload(opcode: number, payload: Uint8Array | undefined): Uint8Array {
    checkOpcode(opcode);
    if (this.#asyncCalls > 0) throw new IpcError(IpcErrorCode.Busy, 'an async call of this driver is in flight; await it first');
    const body = bytes(payload);
    if (servedHere.size !== 0 && servedHere.has(this.#endpoint)) {
      throw new IpcError(IpcErrorCode.SameThread, `this thread serves ${this.#endpoint} itself: a sync call would wait forever; use callAsync`);
    }
    return body;
  }

  #call(opcode: number, payload: Uint8Array | undefined): number {
    const body = this.#syncPayload(opcode, payload);
    // A payload in the reply buffer (a callView reply sent on) is copied
    // by the native call before the reply overwrites it.
    try {
      return native.frontCall(this.#handle, opcode, body, this.#reply.buffer, this.#len);
    } catch (e) {
      throw fromNative(e);
    }
  }

  #result(status: number, view: boolean): Reply {
    const n = this.#len[0] as number;
    if (n === 0) return { status, data: EMPTY };
    if (n > this.#reply.buffer.length) {
      const data = native.frontTakeReply(this.#handle);
      // Grow the reused reply buffer (up to 64 MiB), so that replies of
      // this size are copied into a plain Buffer from now on. Handing the
      // native Vec over instead (no copy) was slower in a loop of sync
      // calls: external Buffers are only freed by finalizers that run when
      // the event loop turns, so every call faulted in fresh pages.
      if (n <= 64 << 20) this.#reply = new StartViews(Buffer.allocUnsafeSlow(n));
      return { status, data };
    }
    const data = this.#reply.of(n);
    return { status, data: view ? data : Buffer.from(data) };
  }

  /**
   * The same call without blocking the event loop. The request is posted
   * at once; the reply is looked for once per event-loop turn while the
   * spin budget lasts (a busy service answers within microseconds), and is
   * then waited for on a libuv thread. Async calls of one driver run one
   * after another.
   */
  callAsync(opcode: number, payload?: Uint8Array): Promise<Reply> {
    checkOpcode(opcode);
    const body = bytes(payload);
    this.#asyncCalls++;
    const run = this.#tail.then(() => this.#callAsync(opcode, body)).finally(() => this.#asyncCalls--);
    this.#tail = run.catch(() => {});
    return run;
  }

  async #callAsync(opcode: number, body: Uint8Array): Promise<Reply> {
    try {
      if (body.length > this.#bufferSize) {
        // Fragments: the whole exchange on a libuv thread.
        const [status, data] = (await this.#native.callAsync(opcode, body)) as [number, Buffer];
        return { status, data };
      }
      native.frontStart(this.#handle, opcode, body);
      const t0 = process.hrtime.bigint();
      do {
        await immediate();
        const status = native.frontPoll(this.#handle, this.#reply.buffer, this.#len);
        if (!Number.isNaN(status)) return this.#result(status, false);
      } while (Number(process.hrtime.bigint() - t0) < this.#pollNs);
      const [status, data] = (await this.#native.finishAsync()) as [number, Buffer];
      return { status, data };
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Frees the request buffer. Later calls fail with `ERR_IPC_DETACHED`. */
  detach(): void {
    this.#native.detach();
  }
}
