import { setImmediate as immediate } from 'node:timers/promises';
import { fromNative } from './errors.js';
import type { NativeBack } from '../native.js';
import { native } from './native.js';
import { BackDriverOptions, checkEndpoint, parse } from './options.js';
import type { Reply } from './front.js';
import type { z } from 'zod';

/** A request as the service's handler sees it. */
export interface Request {
  /** The client: the same number for every request of one attached FrontDriver. */
  readonly client: number;
  /**
   * The process the client said it is when it attached: every thread's
   * driver of one process gives the same. Checked alive, not
   * authenticated (all processes of a channel run as its user).
   */
  readonly pid: number;
  readonly opcode: number;
  /**
   * The request, copied out of shared memory (safe to parse: no client can
   * change it). Safe to keep, except under `serve`'s `payloadViews`, where
   * it is valid until the request is answered.
   */
  readonly payload: Buffer;
}

/**
 * What a handler returns: a status (by convention `-errno` on failure) and
 * reply bytes. `release`, if given, is called once the reply has been
 * copied into the channel (or the client is gone): a handler may then reuse
 * the memory `data` lies in (a pool of read buffers, say).
 */
export type HandlerResult = { status: number; data?: Uint8Array; release?: () => void };

/** Options of {@link BackDriver.serve}. */
export interface ServeOptions {
  /** Nanoseconds to spin for more requests while busy before sleeping. Default 50 000. */
  spinNs?: number;
  /** Longest sleep between checks while idle, in ms. Default 100. */
  idleMs?: number;
  /** Called with the id of each client that exited or detached. */
  onClientGone?: (client: number) => void;
  /**
   * Hand each request's `payload` to the handler as a view of the buffer it
   * was taken into, valid until the request is answered, instead of a copy
   * of its own (default false). A large request then costs no allocation (a
   * fresh 1 MiB Buffer costs about ten times its copy here, in page
   * faults). A handler that keeps a payload past its answer must copy it.
   */
  payloadViews?: boolean;
}

/**
 * A channel's service end as a native addon provides it: @polytropon/ipc's
 * own, or another addon's built on the same Rust core (the I/O service's
 * answers some requests itself, and says how many with `servedNatively`).
 */
export interface NativeBackEnd {
  take(max: number, spinNs: number, into: Uint8Array): number;
  wait(timeoutMs: number): Promise<unknown>;
  complete(index: number, seq: number, status: number, data: Uint8Array): boolean;
  reap(): number[];
  refusals(): number[];
  close(): void;
  /** Requests the native side answered since the last call: a busy service whose requests all went there must not sleep. */
  servedNatively?(): number;
}

/**
 * @polytropon/ipc's own end: the hot operations are plain functions with
 * the channel's number (a class method costs more than a null round trip).
 */
function ipcEnd(n: NativeBack): NativeBackEnd {
  const h = n.handle;
  return {
    take: (max, spinNs, into) => native.backTake(h, max, spinNs, into),
    complete: (index, seq, status, data) => native.backComplete(h, index, seq, status, data),
    wait: (timeoutMs) => n.wait(timeoutMs),
    reap: () => n.reap(),
    refusals: () => n.refusals(),
    close: () => n.close(),
  };
}

type Token = { index: number; seq: number };
const TOKEN = Symbol('token');
/** A buffer requests are taken into with payload views, and how many of them are unanswered. */
type Inbox = { buffer: Buffer; unanswered: number };
const INBOX = Symbol('inbox');
/** Inboxes of payload views kept: beyond, a batch's payloads are copied. */
const MAX_INBOXES = 16;
const EMPTY = Buffer.alloc(0);
/** Microtask turns a batch's handlers get to finish before the event loop turns. */
const MICROTASK_TURNS = 64;

/**
 * Endpoints served by a back driver of this thread (module state is per
 * thread): a sync call to one of them from this thread could never be
 * answered, so the front driver refuses it.
 */
export const servedHere = new Set<string>();
/** An endpoint as `servedHere` keys it (the leading '/' is optional). */
export const endpointKey = (name: string): string => (name.startsWith('/') ? name.slice(1) : name);

/** The I/O service's end of a channel. */
export class BackDriver {
  readonly #native: NativeBackEnd;
  /** Where the native side writes taken requests (see NativeBack.take). */
  #inbox: Buffer;
  #serving: Promise<void> | undefined;
  #stop = false;
  /** Inboxes of `serve` with payload views (see ServeOptions.payloadViews). */
  #views: Inbox[] = [];

  readonly #endpoint: string;

  private constructor(n: NativeBackEnd, maxRequest: number, endpoint: string) {
    this.#native = n;
    this.#endpoint = endpoint;
    servedHere.add(endpoint);
    // Room for the largest request; pages are only touched as used.
    this.#inbox = Buffer.allocUnsafe(Math.max(1 << 20, maxRequest + 32));
  }

  /**
   * Creates the channel at `endpoint` (segments mode 0600; ERR_IPC_EXISTS
   * if taken). `makeEnd` lets another addon built on the same Rust core
   * create it instead (see {@link NativeBackEnd}), from the checked name
   * and options.
   */
  static create(endpoint: string, options?: BackDriverOptions, makeEnd?: (name: string, o: z.output<typeof BackDriverOptions>) => NativeBackEnd): BackDriver {
    const name = checkEndpoint(endpoint);
    const o = parse(BackDriverOptions, options, 'BackDriver options');
    try {
      const end = makeEnd ? makeEnd(name, o) : ipcEnd(native.NativeBack.create(name, o.queues, o.queueCapacity, o.buffers, o.bufferSize, o.maxRequest));
      return new BackDriver(end, o.maxRequest, endpointKey(name));
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Takes up to `max` waiting requests, spinning up to `spinNs` for the first; never sleeps. */
  take(max = 64, spinNs = 0): Request[] {
    return this.#take(max, spinNs, undefined);
  }

  /**
   * Takes requests into `views`' buffer, their payloads views of it, or
   * (without) into the driver's own inbox, their payloads copied out.
   */
  #take(max: number, spinNs: number, views: Inbox | undefined): Request[] {
    const inbox = views?.buffer ?? this.#inbox;
    let n: number;
    try {
      n = this.#native.take(max, spinNs, inbox);
    } catch (e) {
      throw fromNative(e);
    }
    const out: Request[] = [];
    let at = 0;
    for (let i = 0; i < n; i++) {
      // The record layout: see NativeBack.take.
      const len = inbox.readUInt32LE(at + 12);
      const bytes = inbox.subarray(at + 32, at + 32 + len);
      const payload = len === 0 ? EMPTY : views ? bytes : Buffer.from(bytes);
      const token: Token = { index: inbox.readUInt32LE(at), seq: inbox.readUInt32LE(at + 4) };
      out.push({ client: inbox.readDoubleLE(at + 16), pid: inbox.readUInt32LE(at + 24), opcode: inbox.readUInt32LE(at + 8), payload, [TOKEN]: token, [INBOX]: views } as Request);
      at += 32 + Math.ceil(len / 8) * 8;
    }
    if (views) views.unanswered += n;
    return out;
  }

  /** An inbox with no unanswered request in it, for a batch of payload views (undefined: copy this batch). */
  #freeInbox(): Inbox | undefined {
    for (const b of this.#views) if (b.unanswered === 0) return b;
    if (this.#views.length >= MAX_INBOXES) return undefined;
    const b: Inbox = { buffer: Buffer.allocUnsafeSlow(this.#inbox.length), unanswered: 0 };
    this.#views.push(b);
    return b;
  }

  /** A request's payload view is free to be overwritten: its inbox may be reused, or dropped past the first two. */
  #answered(inbox: Inbox): void {
    if (--inbox.unanswered > 0) return;
    const i = this.#views.indexOf(inbox);
    if (i >= 2) this.#views.splice(i, 1);
  }

  /** Resolves true when requests wait, false after `timeoutMs`; sleeps off the event loop. */
  wait(timeoutMs: number): Promise<boolean> {
    return this.#native.wait(timeoutMs) as Promise<boolean>;
  }

  /** Answers a request taken with {@link take}; false if its client is gone meanwhile. */
  complete(request: Request, reply: HandlerResult | Reply): boolean {
    const t = (request as Request & { [TOKEN]?: Token })[TOKEN];
    if (t === undefined) throw new TypeError('complete() takes a request from take()');
    try {
      return this.#native.complete(t.index, t.seq, reply.status, reply.data ?? EMPTY);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Ids of the clients that exited or detached since the last call; their buffers are free again. */
  reap(): number[] {
    return this.#native.reap();
  }

  /** Requests refused so far: descriptors naming nothing current, and rule breaks. */
  refusals(): { staleDescriptors: number; protocolErrors: number } {
    const [staleDescriptors = 0, protocolErrors = 0] = this.#native.refusals();
    return { staleDescriptors, protocolErrors };
  }

  /**
   * Runs `handler` on every request until {@link close}: spins while busy,
   * sleeps when idle, lets async handlers' work run between batches, and
   * reaps dead clients about every 100 ms.
   */
  serve(handler: (req: Request) => HandlerResult | Promise<HandlerResult>, options: ServeOptions = {}): Promise<void> {
    const spinNs = options.spinNs ?? 50_000;
    const idleMs = options.idleMs ?? 100;
    const views = options.payloadViews === true;
    const answer = (req: Request, r: HandlerResult) => {
      try {
        if (!this.#stop) this.complete(req, r);
      } finally {
        r.release?.();
        // Its payload view may be overwritten from now on.
        const inbox = (req as Request & { [INBOX]?: Inbox })[INBOX];
        if (inbox) this.#answered(inbox);
      }
    };
    const fail = (req: Request) => answer(req, { status: -5 /* EIO */ });
    this.#serving ??= (async () => {
      let lastReap = Date.now();
      let lastYield = lastReap;
      let pending = 0;
      while (!this.#stop) {
        const batch = this.#take(64, spinNs, views ? this.#freeInbox() : undefined);
        // Handlers of this batch still running.
        const running = { count: 0 };
        for (const req of batch) {
          let r: HandlerResult | Promise<HandlerResult>;
          try {
            r = handler(req);
          } catch {
            fail(req);
            continue;
          }
          if (r instanceof Promise) {
            pending++;
            running.count++;
            r.then((v) => answer(req, v), () => fail(req)).finally(() => {
              pending--;
              running.count--;
            });
          } else answer(req, r);
        }
        const now = Date.now();
        if (now - lastReap > 100) {
          lastReap = now;
          for (const c of this.reap()) options.onClientGone?.(c);
        }
        if (batch.length === 0) {
          // Busy with requests the native side answered: turn the loop, do not sleep.
          if ((this.#native.servedNatively?.() ?? 0) > 0) await immediate();
          else await this.wait(idleMs);
          lastYield = Date.now();
        } else if (now - lastYield >= 1) {
          // Busy: stay on the fast path, but let timers and I/O run at
          // least every millisecond.
          await immediate();
          lastYield = Date.now();
        } else if (pending > 0) {
          // Handlers that finish on microtasks alone (a libservice making
          // its system calls inline) are answered before the next take,
          // without a turn of the event loop (a setImmediate costs several
          // µs); one that waits for I/O lets the loop turn and is answered
          // when its I/O is done.
          for (let i = 0; i < MICROTASK_TURNS && running.count > 0; i++) await null;
          if (running.count > 0) await immediate();
        }
      }
    })();
    return this.#serving;
  }

  /** Stops serving and closes the channel: waiting clients fail with ERR_IPC_SERVICE_GONE. */
  async close(): Promise<void> {
    this.#stop = true;
    this.#native.close();
    servedHere.delete(this.#endpoint);
    await this.#serving;
  }
}
