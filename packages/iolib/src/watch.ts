// Watching mounted paths: fs.watch, fs.watchFile, fs.unwatchFile and
// fs.promises.watch.
//
// A user-level filesystem has no inotify: an I/O service sees only the
// requests made to it, and other writers (another pool's clients, programs
// on the host directory, other Ceph clients) change files behind it. So
// watching a mounted path polls, as node:fs's watchFile always does: a
// snapshot of the path (its attributes; for a directory, its entries' too)
// every `interval` milliseconds, and the events node:fs gives for what
// changed between two snapshots ('rename' for a name that came or went or
// now names another file, 'change' for new attributes).
import { EventEmitter } from 'node:events';
import { basename } from 'node:path';
import { IoStats } from './records.js';

/** What the watchers need of the library: lookups that answer undefined for a missing path. */
export interface WatchFs {
  /** lstat (or stat with `follow`) of a mounted path; undefined when nothing is there. */
  look(path: string, follow: boolean): Promise<IoStats | undefined>;
  lookSync(path: string, follow: boolean): IoStats | undefined;
  /** The names in a mounted directory, with whether each is a directory. */
  list(path: string): Promise<{ name: string; dir: boolean }[]>;
}

/** fs.watch's options, with the poll period this library adds. */
export interface WatchOptions {
  persistent?: boolean;
  recursive?: boolean;
  encoding?: BufferEncoding | 'buffer';
  signal?: AbortSignal;
  /** How often a mounted path is looked at, in ms (default 200). */
  interval?: number;
}

/** How often fs.watch looks at a mounted path unless told. */
export const WATCH_INTERVAL_MS = 200;

/** What a poll compares: libuv's fs_poll fields (not atime). */
const same = (a: IoStats, b: IoStats) =>
  a.ino === b.ino && a.dev === b.dev && a.mode === b.mode && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.uid === b.uid && a.gid === b.gid && a.nlink === b.nlink;

function checkInterval(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 1) throw Object.assign(new RangeError(`The "${name}" option must be a number of milliseconds >= 1. Received ${String(v)}`), { code: 'ERR_OUT_OF_RANGE' });
  return v;
}

/** A timer that looks again `interval` ms after each look ends (never two at once). */
class Poller {
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #ref: boolean;

  constructor(
    readonly interval: number,
    persistent: boolean,
    private readonly tick: () => Promise<void>,
  ) {
    this.#ref = persistent;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.tick().finally(() => this.#schedule());
    }, this.interval);
    if (!this.#ref) this.#timer.unref();
  }

  ref(): void {
    this.#ref = true;
    this.#timer?.ref();
  }

  unref(): void {
    this.#ref = false;
    this.#timer?.unref();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}

/** A snapshot: relative name ('' for the watched path itself) to its attributes. */
type Snapshot = Map<string, IoStats>;

/** fs.watch on a mounted path: an FSWatcher ('change' events, close, ref, unref) that polls. */
export class PollingWatcher extends EventEmitter {
  readonly #poller: Poller;
  #closed = false;
  #last: Snapshot;

  constructor(
    private readonly fs: WatchFs,
    private readonly path: string,
    first: IoStats,
    private readonly o: WatchOptions,
  ) {
    super();
    this.#last = new Map([['', first]]);
    // The first full snapshot is taken at once: changes from now on count.
    void this.#snapshot().then((s) => {
      if (!this.#closed) this.#last = s;
    });
    this.#poller = new Poller(o.interval ?? WATCH_INTERVAL_MS, o.persistent !== false, () => this.#look());
    o.signal?.addEventListener('abort', () => this.close(), { once: true });
  }

  async #snapshot(): Promise<Snapshot> {
    const out: Snapshot = new Map();
    const self = await this.fs.look(this.path, true);
    if (!self) return out;
    out.set('', self);
    if (!self.isDirectory()) return out;
    const walk = async (dir: string, prefix: string): Promise<void> => {
      let entries: { name: string; dir: boolean }[];
      try {
        entries = await this.fs.list(dir);
      } catch {
        return; // gone meanwhile: the next look sees it
      }
      for (const e of entries) {
        const st = await this.fs.look(`${dir}/${e.name}`, false);
        if (!st) continue;
        out.set(prefix + e.name, st);
        if (this.o.recursive === true && e.dir) await walk(`${dir}/${e.name}`, `${prefix}${e.name}/`);
      }
    };
    await walk(this.path === '/' ? '' : this.path, '');
    return out;
  }

  async #look(): Promise<void> {
    let now: Snapshot;
    try {
      now = await this.#snapshot();
    } catch (e) {
      if (!this.#closed) this.emit('error', e);
      return;
    }
    if (this.#closed) return;
    const before = this.#last;
    this.#last = now;
    const own = basename(this.path);
    const name = (n: string) => {
      const s = n === '' ? own : n;
      return this.o.encoding === 'buffer' ? Buffer.from(s) : s;
    };
    for (const [n, st] of now) {
      const was = before.get(n);
      if (!was || was.ino !== st.ino) this.emit('change', 'rename', name(n));
      else if (!same(was, st) && (n !== '' || !st.isDirectory())) this.emit('change', 'change', name(n));
    }
    for (const n of before.keys()) if (!now.has(n)) this.emit('change', 'rename', name(n));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#poller.stop();
    process.nextTick(() => this.emit('close'));
  }

  ref(): this {
    this.#poller.ref();
    return this;
  }

  unref(): this {
    this.#poller.unref();
    return this;
  }
}

/** fs.watch for a mounted path: throws ENOENT (as node:fs) when nothing is there. */
export function watchMounted(fs: WatchFs, path: string, o: WatchOptions, listener?: (event: string, filename: string | Buffer) => void): PollingWatcher {
  if (o.interval !== undefined) checkInterval(o.interval, 'interval');
  const first = fs.lookSync(path, true);
  if (!first) throw Object.assign(new Error(`ENOENT: no such file or directory, watch '${path}'`), { code: 'ENOENT', errno: -2, syscall: 'watch', path, filename: path });
  const w = new PollingWatcher(fs, path, first, o);
  if (listener) w.on('change', listener);
  return w;
}

/** fs.promises.watch for a mounted path: the events as an async iterator, until `signal` aborts. */
export async function* watchMountedAsync(fs: WatchFs, path: string, o: WatchOptions): AsyncGenerator<{ eventType: string; filename: string | Buffer }> {
  if (o.signal?.aborted) throw Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
  const w = watchMounted(fs, path, o);
  const queue: { eventType: string; filename: string | Buffer }[] = [];
  let wake: (() => void) | undefined;
  let failure: unknown;
  w.on('change', (eventType: string, filename: string | Buffer) => {
    queue.push({ eventType, filename });
    wake?.();
  });
  w.on('error', (e) => {
    failure = e;
    wake?.();
  });
  w.on('close', () => wake?.());
  try {
    for (;;) {
      while (queue.length > 0) yield queue.shift()!;
      if (failure !== undefined) throw failure;
      if (o.signal?.aborted) throw Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    w.close();
  }
}

const ZERO = { dev: 0, ino: 0, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, size: 0, blksize: 0, blocks: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, birthtimeMs: 0 };

/** fs.watchFile's StatWatcher for a mounted path: 'change' (current, previous) whenever its attributes change. */
export class PollingStatWatcher extends EventEmitter {
  readonly #poller: Poller;
  #last: IoStats;
  #stopped = false;

  constructor(fs: WatchFs, path: string, interval: number, persistent: boolean) {
    super();
    // What is there now is the starting point; a missing file is all zeroes (node:fs's).
    this.#last = fs.lookSync(path, true) ?? new IoStats(ZERO);
    this.#poller = new Poller(interval, persistent, async () => {
      const now = (await fs.look(path, true).catch(() => undefined)) ?? new IoStats(ZERO);
      if (this.#stopped || same(now, this.#last)) return;
      const prev = this.#last;
      this.#last = now;
      this.emit('change', now, prev);
    });
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#poller.stop();
    process.nextTick(() => this.emit('stop'));
  }

  ref(): this {
    this.#poller.ref();
    return this;
  }

  unref(): this {
    this.#poller.unref();
    return this;
  }
}

/** The watchFile registry of one library: one StatWatcher per path, listeners added to it, as node:fs keeps them. */
export class StatWatchers {
  readonly #byPath = new Map<string, PollingStatWatcher>();

  constructor(private readonly fs: WatchFs) {}

  watch(path: string, o: { interval?: number; persistent?: boolean; bigint?: boolean }, listener: (curr: IoStats, prev: IoStats) => void): PollingStatWatcher {
    if (o.bigint === true) throw Object.assign(new TypeError('watchFile with bigint: true is not supported on a mounted path'), { code: 'ERR_INVALID_ARG_VALUE' });
    const interval = o.interval === undefined ? 5007 : checkInterval(o.interval, 'interval');
    let w = this.#byPath.get(path);
    if (!w) {
      w = new PollingStatWatcher(this.fs, path, interval, o.persistent !== false);
      this.#byPath.set(path, w);
    }
    w.on('change', listener);
    return w;
  }

  unwatch(path: string, listener?: (curr: IoStats, prev: IoStats) => void): void {
    const w = this.#byPath.get(path);
    if (!w) return;
    if (listener) w.removeListener('change', listener);
    else w.removeAllListeners('change');
    if (w.listenerCount('change') === 0) {
      w.stop();
      this.#byPath.delete(path);
    }
  }
}
