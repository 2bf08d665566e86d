import type { NativeFront } from '../native.js';
import { fromNative, IpcError, IpcErrorCode } from './errors.js';
import { native } from './native.js';
import { checkEndpoint, checkOpcode, FrontDriverOptions, parse } from './options.js';

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
  /** Reused for replies up to its size; larger ones come back whole. */
  #reply = Buffer.allocUnsafe(64 * 1024);
  readonly #len = new Float64Array(1);

  private constructor(n: NativeFront) {
    this.#native = n;
  }

  /** Attaches to the service at `endpoint` (a shared-memory name). */
  static attach(endpoint: string, options?: FrontDriverOptions): FrontDriver {
    const name = checkEndpoint(endpoint);
    const o = parse(FrontDriverOptions, options, 'FrontDriver options');
    try {
      return new FrontDriver(native.NativeFront.attach(name, o.spinNs, o.queue));
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
    checkOpcode(opcode);
    let status: number;
    try {
      status = this.#native.call(opcode, bytes(payload), this.#reply, this.#len);
    } catch (e) {
      throw fromNative(e);
    }
    const n = this.#len[0] as number;
    if (n === 0) return { status, data: EMPTY };
    if (n > this.#reply.length) return { status, data: this.#native.takeReply() };
    return { status, data: Buffer.from(this.#reply.subarray(0, n)) };
  }

  /** The same call without blocking the event loop (it waits on a libuv thread). */
  async callAsync(opcode: number, payload?: Uint8Array): Promise<Reply> {
    checkOpcode(opcode);
    const body = bytes(payload);
    try {
      const [status, data] = (await this.#native.callAsync(opcode, body)) as [number, Buffer];
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
