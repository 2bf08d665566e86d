// The I/O service: filesystem instances (a libservice stack each, mounted
// at a name) served behind a back driver. A request names its instance by
// the first component of its path ('/rootfs/etc/hosts'); the rest is the
// path within the instance, which confines it ('..' stops at its root).
// Handles are per process, as kernel descriptors are: every client (thread)
// of one process shares them, a process sees only its own and may hold at
// most `maxHandlesPerProcess`, and they are closed when its last client
// detaches or the process dies.
import { BackDriver, Opcode, PROTOCOL_VERSION, decodeRequest, encodeResult } from '@polytropon/ipc';
import type { HandlerResult, Message, Request } from '@polytropon/ipc';
import { isLibservice, LocalLibservice, parseOptions } from '@polytropon/libservice';
import type { Libservice } from '@polytropon/libservice';
import { z } from 'zod';
import { errno } from './errno.js';
import { backEnd, nativeBinding, type NativeService } from './native.js';
import { OperationCounter, type OperationStats } from './stats.js';

const Instance = z.custom<Libservice>(isLibservice, { message: 'must be a libservice' });
/** What an instance may be named: it is a path component of every request. */
export const INSTANCE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const InstanceName = z.string().regex(INSTANCE_NAME, 'an instance name is 1..64 of A-Z a-z 0-9 . _ -');

/** Request queues, their slots, request buffers and their size; @polytropon/ipc checks the values. */
export const ChannelOptions = z.strictObject({
  queues: z.number().int().optional(),
  queueCapacity: z.number().int().optional(),
  buffers: z.number().int().optional(),
  bufferSize: z.number().int().optional(),
  maxRequest: z.number().int().optional(),
});

const IoServiceOptions = z.strictObject({
  /** The shared-memory name clients attach to (one per pool). */
  endpoint: z.string().min(1),
  /** Filesystem instances by name. More can be mounted later. */
  instances: z.record(InstanceName, Instance).default({}),
  /** Handles one process may hold open; one more open fails with EMFILE. */
  maxHandlesPerProcess: z.number().int().min(1).max(1 << 20).default(4096),
  /** Largest read served in one request. */
  maxReadBytes: z.number().int().min(4096).max(1 << 30).default(64 << 20),
  /** Nanoseconds to spin for more requests while busy before sleeping. */
  spinNs: z.number().int().min(0).max(1e9).default(50_000),
  /** Longest sleep between checks while idle, in ms. */
  idleMs: z.number().int().min(1).max(10_000).default(100),
  /** The channel's geometry (see @polytropon/ipc's BackDriverOptions). */
  channel: ChannelOptions.default({}),
  /**
   * Answer the requests of plain local-directory instances (a
   * LocalLibservice with inline system calls, mounted as it is) natively,
   * in the take loop: stat, lstat, readdir, and open, read, write, fstat,
   * ftruncate, fsync, fdatasync, close of the files opened there; when the
   * native binary loads and the kernel has openat2 (Linux 5.6). Everything
   * else, and every other instance, in JS.
   */
  nativeLocal: z.boolean().default(true),
});
export type IoServiceOptions = z.input<typeof IoServiceOptions>;

/** What {@link IoService.stats} reports. */
export interface IoServiceStats {
  /** Per operation: counts, errors and latency (decode to reply, in the service). */
  operations: Record<string, OperationStats>;
  /** Attached clients (a driver each: one per application thread) and the processes they belong to. */
  clients: number;
  processes: number;
  openHandles: number;
  inFlight: number;
  /** Requests that did not decode (a buggy or hostile client). */
  badRequests: number;
  /** Requests the back driver refused (stale descriptors, rule breaks). */
  refusals: { staleDescriptors: number; protocolErrors: number };
  /** Instances answered natively (see the `nativeLocal` option). */
  nativeInstances: string[];
}

interface OpenHandle {
  instance: Libservice;
  handle: number;
}

interface Process {
  pid: number;
  handles: Map<number, OpenHandle>;
  next: number;
  clients: Set<number>;
}

const OPCODE_NAMES = new Map<number, string>(Object.entries(Opcode).map(([name, n]) => [n, name.toLowerCase()]));
const NO_DATA: Message = {};

/** A result already in its wire form (a read's), with what to do once it is in the channel. */
class Encoded {
  constructor(
    readonly bytes: Buffer,
    readonly release: () => void,
  ) {}
}

/**
 * Buffers that reads are made into and answered from, reused: a fresh
 * Buffer of 1 MiB costs about ten times its copy here (page faults), and a
 * read answered through `encodeResult` was copied once more. A read takes
 * one with room for its reply (the version byte, then the data) and gives
 * it back once the reply is in the channel. At most four are kept, none
 * over 2 MiB, so an idle service stays small.
 */
class ReadBuffers {
  static readonly KEEP = 4;
  static readonly KEEP_BYTES = 2 << 20;
  readonly #free: Buffer[] = [];

  take(size: number): Buffer {
    for (let i = this.#free.length - 1; i >= 0; i--) {
      const b = this.#free[i]!;
      if (b.length >= size) {
        this.#free.splice(i, 1);
        return b;
      }
    }
    return Buffer.allocUnsafeSlow(size <= 4096 ? 4096 : 2 ** Math.ceil(Math.log2(size)));
  }

  put(b: Buffer): void {
    if (this.#free.length < ReadBuffers.KEEP && b.length <= ReadBuffers.KEEP_BYTES) this.#free.push(b);
  }
}

class Refusal {
  constructor(readonly errno: number) {}
}
const refuse = (code: Parameters<typeof errno>[0]): never => {
  throw new Refusal(errno(code));
};

/** Hosts filesystem instances behind a back driver. */
export class IoService {
  readonly #back: BackDriver;
  readonly #instances = new Map<string, Libservice>();
  readonly #processes = new Map<number, Process>();
  readonly #clientPid = new Map<number, number>();
  readonly #counters = new Map<number, OperationCounter>();
  readonly #readBuffers = new ReadBuffers();
  readonly #o: z.output<typeof IoServiceOptions>;
  /** The native end of the channel, when it serves it. */
  readonly #nativeEnd: NativeService | undefined;
  /** Its binding, whose plain functions take the end's number. */
  readonly #binding: Exclude<ReturnType<typeof nativeBinding>, Error> | undefined;
  /** The end's number (read once: a getter of a native object costs a class method's call). */
  readonly #nativeHandle: number = 0;
  /** Instances the native end serves, and how to stop listening for their libservice's unmount. */
  readonly #nativeNames = new Map<string, () => void>();
  #serving: Promise<void> | undefined;
  /** The serve loop has ended (normally at stop, or by an error). */
  #served = false;
  #stopping = false;
  #inFlight = 0;
  #drained: (() => void) | undefined;
  #badRequests = 0;

  private constructor(o: z.output<typeof IoServiceOptions>) {
    this.#o = o;
    const channel = Object.fromEntries(Object.entries(o.channel).filter(([, v]) => v !== undefined));
    const binding = o.nativeLocal ? nativeBinding() : undefined;
    if (binding === undefined || binding instanceof Error) {
      this.#back = BackDriver.create(o.endpoint, channel);
    } else {
      let end: NativeService | undefined;
      this.#back = BackDriver.create(o.endpoint, channel, (name, c) => backEnd(binding, (end = binding.NativeService.create(name, c.queues, c.queueCapacity, c.buffers, c.bufferSize, c.maxRequest, o.maxHandlesPerProcess, o.maxReadBytes))));
      this.#nativeEnd = end;
      this.#binding = binding;
      this.#nativeHandle = end?.handle ?? 0;
    }
    for (const [name, inst] of Object.entries(o.instances)) {
      this.#instances.set(name, inst);
      this.#serveNatively(name, inst);
    }
    for (const n of OPCODE_NAMES.keys()) this.#counters.set(n, new OperationCounter());
  }

  /** Creates the service's channel (ERR_IPC_EXISTS if the endpoint is taken); {@link start} serves it. */
  static create(options: IoServiceOptions): IoService {
    return new IoService(parseOptions(IoServiceOptions, options, 'IoService options'));
  }

  /** Serves requests until {@link stop}; returns at once. */
  start(): this {
    if (this.#serving) return this;
    this.#serving = this.#back.serve((req) => this.#handle(req), {
      spinNs: this.#o.spinNs,
      idleMs: this.#o.idleMs,
      onClientGone: (c) => void this.#forget(c),
      // A request's payload (a write's data) is read before it is answered.
      payloadViews: true,
    });
    const ended = () => {
      this.#served = true;
    };
    this.#serving.then(ended, ended);
    return this;
  }

  /** Mounts a filesystem instance at `name` (clients reach it as '/name/...'). */
  mount(name: string, instance: Libservice): void {
    parseOptions(InstanceName, name, 'instance name');
    if (!isLibservice(instance)) throw Object.assign(new TypeError('instance must be a libservice'), { code: 'ERR_INVALID_ARG_TYPE' });
    if (this.#instances.has(name)) throw Object.assign(new Error(`an instance is mounted at ${name} already`), { code: 'ERR_INVALID_ARG_VALUE' });
    this.#instances.set(name, instance);
    this.#serveNatively(name, instance);
  }

  /**
   * Hands a plain local-directory instance to the native end, when there
   * is one: a LocalLibservice itself (a subclass may change what it does),
   * with inline system calls. Where the native end cannot serve it (no
   * openat2, or a seccomp profile that forbids it...), JS does.
   */
  #serveNatively(name: string, inst: Libservice): void {
    const end = this.#nativeEnd;
    if (!end || !(inst instanceof LocalLibservice) || Object.getPrototypeOf(inst) !== LocalLibservice.prototype || inst.syscalls !== 'inline') return;
    let served: boolean;
    try {
      served = end.mountLocal(name, inst.root, inst.maxHandles);
    } catch {
      served = false;
    }
    if (!served) return;
    // A libservice unmounted under the service answers ENOTCONN from then on: in JS.
    const stop = inst.onUnmount(() => {
      if (this.#instances.get(name) === inst) this.#stopServingNatively(name);
    });
    this.#nativeNames.set(name, stop);
  }

  #stopServingNatively(name: string): void {
    const stop = this.#nativeNames.get(name);
    if (stop === undefined) return;
    this.#nativeNames.delete(name);
    stop();
    this.#nativeEnd?.unmountLocal(name);
  }

  /** Removes an instance: requests naming it fail with ENOENT; handles clients hold on it are closed. */
  async unmount(name: string): Promise<Libservice | undefined> {
    const inst = this.#instances.get(name);
    if (!inst) return undefined;
    this.#stopServingNatively(name);
    this.#instances.delete(name);
    for (const c of this.#processes.values()) {
      for (const [fd, h] of c.handles) {
        if (h.instance !== inst) continue;
        c.handles.delete(fd);
        this.#countHandles(c);
        await inst.close(h.handle).catch(() => {});
      }
    }
    return inst;
  }

  /**
   * Stops gracefully: new requests are refused (ENOTCONN), those in flight
   * finish and are answered, every client handle is closed, then the
   * channel closes (clients waiting get ERR_IPC_SERVICE_GONE). The
   * instances stay mounted in their libservices: unmount them as you own them.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#nativeEnd?.setStopping(true);
    if (this.#inFlight > 0) await new Promise<void>((r) => (this.#drained = r));
    // Flushes the native end took finish on their threads; the serve loop
    // completes them (while it runs: one that failed completes nothing more).
    while (!this.#served && (this.#nativeEnd?.flushesInFlight() ?? 0) > 0) await new Promise((r) => setTimeout(r, 1));
    this.#adoptNativeClients();
    for (const c of [...this.#clientPid.keys()]) await this.#forget(c);
    for (const name of [...this.#nativeNames.keys()]) this.#stopServingNatively(name);
    await this.#back.close();
    await this.#serving;
  }

  /** Counters and latency histograms per operation, and the clients, processes and handles now. */
  stats(): IoServiceStats {
    this.#adoptNativeClients();
    const operations: Record<string, OperationStats> = {};
    for (const [op, counter] of this.#counters) {
      const native = this.#nativeEnd?.counters(op);
      const c = native ? counter.plus(native) : counter;
      if (c.count > 0) operations[OPCODE_NAMES.get(op) as string] = c.snapshot();
    }
    let openHandles = 0;
    for (const p of this.#processes.values()) openHandles += p.handles.size;
    openHandles += this.#nativeEnd?.openHandles() ?? 0;
    return { operations, clients: this.#clientPid.size, processes: this.#processes.size, openHandles, inFlight: this.#inFlight, badRequests: this.#badRequests, refusals: this.#back.refusals(), nativeInstances: this.#nativeEnd?.instances() ?? [] };
  }

  /** A client is gone: when it was its process's last, the process's handles close (here and natively). */
  async #forget(client: number): Promise<void> {
    this.#adoptNativeClients();
    this.#nativeEnd?.forgetClient(client);
    const pid = this.#clientPid.get(client);
    if (pid === undefined) return;
    this.#clientPid.delete(client);
    const p = this.#processes.get(pid);
    if (!p) return;
    p.clients.delete(client);
    if (p.clients.size > 0) return;
    this.#processes.delete(pid);
    this.#nativeEnd?.closeProcess(pid);
    await Promise.all([...p.handles.values()].map((h) => h.instance.close(h.handle).catch(() => {})));
  }

  /** Registers the clients the native end answered and this side never saw. */
  #adoptNativeClients(): void {
    const pairs = this.#nativeEnd?.newClients();
    if (!pairs) return;
    for (let i = 0; i + 1 < pairs.length; i += 2) this.#register(pairs[i]!, pairs[i + 1]!);
  }

  // --- requests ------------------------------------------------------------

  async #handle(req: Request): Promise<HandlerResult> {
    if (this.#stopping) return { status: -errno('ENOTCONN') };
    const counter = this.#counters.get(req.opcode);
    if (counter === undefined) {
      this.#badRequests++;
      return { status: -errno('ENOSYS') };
    }
    this.#inFlight++;
    const t0 = performance.now();
    let status = 0;
    let data: Buffer | undefined;
    let release: (() => void) | undefined;
    try {
      let msg: Message;
      try {
        msg = decodeRequest(req.opcode, req.payload);
      } catch {
        this.#badRequests++;
        refuse('EBADMSG');
      }
      const result = await this.#run(this.#process(req), req.opcode, msg!);
      if (result instanceof Encoded) ({ bytes: data, release } = result);
      else data = result === NO_DATA ? undefined : encodeResult(req.opcode, result);
    } catch (e) {
      status = -(e instanceof Refusal ? e.errno : fsErrno(e));
    } finally {
      counter.record((performance.now() - t0) * 1000, status !== 0);
      if (--this.#inFlight === 0) this.#drained?.();
    }
    return data === undefined ? { status } : release === undefined ? { status, data } : { status, data, release };
  }

  /** The instance and the path within it for a request path. */
  #route(path: string): [Libservice, string] {
    const slash = path.indexOf('/', 1);
    const name = slash < 0 ? path.slice(1) : path.slice(1, slash);
    const inst = path.startsWith('/') ? this.#instances.get(name) : undefined;
    if (!inst) return refuse('ENOENT');
    return [inst, slash < 0 ? '/' : path.slice(slash)];
  }

  /** The process a request comes from (its handle table). */
  #process(req: Request): Process {
    return this.#register(req.client, req.pid);
  }

  #register(client: number, pid: number): Process {
    let p = this.#processes.get(pid);
    if (!p) this.#processes.set(pid, (p = { pid, handles: new Map(), next: 1, clients: new Set() }));
    if (!p.clients.has(client)) {
      p.clients.add(client);
      this.#clientPid.set(client, pid);
    }
    return p;
  }

  /** Tells the native end how many handles a process holds here (EMFILE counts both). */
  #countHandles(p: Process): void {
    this.#binding?.serviceSetHandlesThere(this.#nativeHandle, p.pid, p.handles.size);
  }

  #open(p: Process, fd: number): OpenHandle {
    return p.handles.get(fd) ?? refuse('EBADF');
  }

  async #run(proc: Process, op: number, m: Message): Promise<Message | Encoded> {
    const path = (k = 'path') => this.#route(m[k] as string);
    const num = (k: string) => m[k] as number;
    switch (op) {
      case Opcode.Open: {
        if (proc.handles.size + (this.#binding?.serviceHandlesHere(this.#nativeHandle, proc.pid) ?? 0) >= this.#o.maxHandlesPerProcess) refuse('EMFILE');
        const [inst, p] = path();
        const handle = await inst.open(p, num('flags'), num('mode'));
        if (this.#processes.get(proc.pid) !== proc) {
          // The process went while its open ran: nobody will close this.
          await inst.close(handle).catch(() => {});
          refuse('EBADF');
        }
        const fd = proc.next++;
        proc.handles.set(fd, { instance: inst, handle });
        this.#countHandles(proc);
        return { fd };
      }
      case Opcode.Close: {
        const h = this.#open(proc, num('fd'));
        proc.handles.delete(num('fd'));
        this.#countHandles(proc);
        await h.instance.close(h.handle);
        return NO_DATA;
      }
      case Opcode.Read: {
        const h = this.#open(proc, num('fd'));
        const length = num('length');
        if (length > this.#o.maxReadBytes) refuse('EINVAL');
        const pos = num('position');
        // Read straight into the reply's place (after its version byte).
        const buf = this.#readBuffers.take(1 + length);
        let n: number;
        try {
          n = await h.instance.read(h.handle, buf, 1, length, pos < 0 ? null : pos);
        } catch (e) {
          this.#readBuffers.put(buf);
          throw e;
        }
        buf[0] = PROTOCOL_VERSION;
        return new Encoded(buf.subarray(0, 1 + n), () => this.#readBuffers.put(buf));
      }
      case Opcode.Write: {
        const h = this.#open(proc, num('fd'));
        const data = m.data as Buffer;
        const pos = num('position');
        return { written: await h.instance.write(h.handle, data, 0, data.length, pos < 0 ? null : pos) };
      }
      case Opcode.Stat:
      case Opcode.Lstat: {
        const [inst, p] = path();
        return (op === Opcode.Stat ? await inst.stat(p) : await inst.lstat(p)) as unknown as Message;
      }
      case Opcode.Fstat: {
        const h = this.#open(proc, num('fd'));
        return (await h.instance.fstat(h.handle)) as unknown as Message;
      }
      case Opcode.Readdir: {
        const [inst, p] = path();
        return { entries: await inst.readdir(p) };
      }
      case Opcode.Mkdir: {
        const [inst, p] = path();
        await inst.mkdir(p, num('mode'));
        return NO_DATA;
      }
      case Opcode.Rmdir:
      case Opcode.Unlink: {
        const [inst, p] = path();
        await (op === Opcode.Rmdir ? inst.rmdir(p) : inst.unlink(p));
        return NO_DATA;
      }
      case Opcode.Rename:
      case Opcode.Link: {
        const [a, pa] = path(op === Opcode.Rename ? 'from' : 'existing');
        const [b, pb] = path(op === Opcode.Rename ? 'to' : 'path');
        if (a !== b) refuse('EXDEV');
        await (op === Opcode.Rename ? a.rename(pa, pb, { noReplace: (num('flags') & 1) !== 0 }) : a.link(pa, pb));
        return NO_DATA;
      }
      case Opcode.Symlink: {
        const [inst, p] = path();
        await inst.symlink(m.target as string, p);
        return NO_DATA;
      }
      case Opcode.Readlink: {
        const [inst, p] = path();
        return { target: await inst.readlink(p) };
      }
      case Opcode.Truncate: {
        const [inst, p] = path();
        await inst.truncate(p, num('length'));
        return NO_DATA;
      }
      case Opcode.Ftruncate: {
        const h = this.#open(proc, num('fd'));
        await h.instance.ftruncate(h.handle, num('length'));
        return NO_DATA;
      }
      case Opcode.Fsync:
      case Opcode.Fdatasync: {
        const h = this.#open(proc, num('fd'));
        await (op === Opcode.Fsync ? h.instance.fsync(h.handle) : h.instance.fdatasync(h.handle));
        return NO_DATA;
      }
      case Opcode.Chmod: {
        const [inst, p] = path();
        await inst.chmod(p, num('mode'));
        return NO_DATA;
      }
      case Opcode.Chown: {
        const [inst, p] = path();
        await inst.chown(p, num('uid'), num('gid'));
        return NO_DATA;
      }
      case Opcode.Utimes: {
        const [inst, p] = path();
        await inst.utimes(p, num('atimeMs'), num('mtimeMs'));
        return NO_DATA;
      }
      case Opcode.Fchmod: {
        const h = this.#open(proc, num('fd'));
        await h.instance.fchmod(h.handle, num('mode'));
        return NO_DATA;
      }
      case Opcode.Fchown: {
        const h = this.#open(proc, num('fd'));
        await h.instance.fchown(h.handle, num('uid'), num('gid'));
        return NO_DATA;
      }
      case Opcode.Futimes: {
        const h = this.#open(proc, num('fd'));
        await h.instance.futimes(h.handle, num('atimeMs'), num('mtimeMs'));
        return NO_DATA;
      }
      case Opcode.Access: {
        const [inst, p] = path();
        await inst.access(p, num('mode'));
        return NO_DATA;
      }
      case Opcode.Statfs: {
        const [inst, p] = path();
        return (await inst.statfs(p)) as unknown as Message;
      }
    }
    return refuse('ENOSYS');
  }
}

/**
 * The errno of a libservice's error (FsError or node:fs's); EINVAL for an
 * argument a libservice refused (values the protocol lets through); EIO
 * for anything else.
 */
function fsErrno(e: unknown): number {
  const { errno: n, code } = (e ?? {}) as { errno?: unknown; code?: unknown };
  if (typeof n === 'number' && n < 0 && n > -4096) return -n;
  return typeof code === 'string' && code.startsWith('ERR_') ? errno('EINVAL') : errno('EIO');
}
