import { fork } from 'node:child_process';
import { writeFileSync, unlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Rcqb, RcqbError, type RcqbHandle } from './index.js';
import { codeOf as codeOfType } from '../../../tooling/test-helpers.js';

const participant = fileURLToPath(new URL('./fixtures/participant.mjs', import.meta.url));
const names: string[] = [];
function uniqueName(tag: string): string {
  const n = `rcqb-js-${tag}-${process.pid}-${names.length}`;
  names.push(n);
  return n;
}
afterEach(() => {
  for (const n of names.splice(0)) {
    try {
      Rcqb.unlink(n);
    } catch {
      /* already unlinked by the test */
    }
  }
});

const codeOf = (f: () => unknown) => codeOfType(RcqbError, f);

describe('single thread', () => {
  it('round-trips byte items in FIFO order and reports length', () => {
    const q = Rcqb.create({ capacity: 8, itemSize: 16 });
    q.enqueue(Buffer.from('hello'));
    q.enqueue(new Uint8Array([1, 2, 3]));
    expect(q.length).toBe(2);
    expect(q.dequeue().toString()).toBe('hello');
    const buf = Buffer.alloc(16);
    expect(q.dequeueInto(buf)).toBe(3);
    expect([...buf.subarray(0, 3)]).toEqual([1, 2, 3]);
    expect(q.length).toBe(0);
  });

  it('has a number fast path that keeps safe integers exact', () => {
    const q = Rcqb.create({ capacity: 4, itemSize: 8 });
    for (const v of [0, 1, -5, 2 ** 53 - 1]) {
      q.enqueueNumber(v);
      expect(q.dequeueNumber()).toBe(v);
    }
    expect(codeOf(() => q.enqueueNumber(1.5))).toBe('ERR_RCQB_INVALID_ARGUMENT');
  });

  it('try forms report full and empty without blocking', () => {
    const q = Rcqb.create({ capacity: 2, itemSize: 8 });
    expect(q.tryDequeue()).toBeUndefined();
    expect(q.tryDequeueNumber()).toBeUndefined();
    expect(q.tryEnqueueNumber(1)).toBe(true);
    expect(q.tryEnqueue(Buffer.alloc(8, 2))).toBe(true);
    expect(q.tryEnqueueNumber(3)).toBe(false);
    expect(q.tryDequeueNumber()).toBe(1);
    expect(q.tryDequeue()).toEqual(Buffer.alloc(8, 2));
    expect(q.stats().enqueueTickets).toBe(2);
  });

  it('timed forms fail with ERR_RCQB_TIMEOUT and lose nothing', () => {
    const q = Rcqb.create({ capacity: 1, itemSize: 8 });
    const t0 = performance.now();
    expect(codeOf(() => q.dequeueNumber({ timeout: 30 }))).toBe('ERR_RCQB_TIMEOUT');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    q.enqueueNumber(7);
    expect(codeOf(() => q.enqueueNumber(8, { timeout: 10 }))).toBe('ERR_RCQB_TIMEOUT');
    expect(q.dequeueNumber({ timeout: 1000 })).toBe(7);
    expect(q.tryDequeueNumber()).toBeUndefined();
  });

  it('close fails enqueues and lets consumers drain first', () => {
    const q = Rcqb.create({ capacity: 4, itemSize: 8 });
    q.enqueueNumber(1);
    q.close();
    expect(q.closed).toBe(true);
    expect(codeOf(() => q.enqueueNumber(2))).toBe('ERR_RCQB_CLOSED');
    expect(q.dequeueNumber()).toBe(1);
    expect(codeOf(() => q.dequeueNumber())).toBe('ERR_RCQB_CLOSED');
    expect(codeOf(() => q.tryDequeue())).toBe('ERR_RCQB_CLOSED');
  });
});

describe('bad input gets a clear error with a stable code', () => {
  it.each([
    [{ capacity: 3, itemSize: 8 }],
    [{ capacity: 0, itemSize: 8 }],
    [{ capacity: 2 ** 25, itemSize: 8 }],
    [{ capacity: 8, itemSize: 0 }],
    [{ capacity: 8, itemSize: 65537 }],
    [{ capacity: 8, itemSize: 8, name: 'a/b' }],
    [{ capacity: 8, itemSize: 8, bogus: 1 }],
    [{ capacity: 8.5, itemSize: 8 }],
  ])('create(%j)', (opts) => {
    expect(codeOf(() => Rcqb.create(opts as never))).toBe('ERR_RCQB_INVALID_ARGUMENT');
  });

  it('rejects oversized items, small buffers, non-bytes and bad timeouts', () => {
    const q = Rcqb.create({ capacity: 4, itemSize: 16 });
    expect(codeOf(() => q.enqueue(Buffer.alloc(17)))).toBe('ERR_RCQB_ITEM_TOO_LARGE');
    expect(codeOf(() => q.dequeueInto(Buffer.alloc(8)))).toBe('ERR_RCQB_INVALID_ARGUMENT');
    expect(codeOf(() => q.enqueue('text' as never))).toBe('ERR_RCQB_INVALID_ARGUMENT');
    expect(codeOf(() => q.enqueue(Buffer.alloc(1), { timeout: -1 }))).toBe('ERR_RCQB_INVALID_ARGUMENT');
    expect(codeOf(() => Rcqb.create({ capacity: 4, itemSize: 4 }).enqueueNumber(1))).toBe('ERR_RCQB_ITEM_TOO_LARGE');
  });

  it('open reports a missing name and a segment that is not a queue', () => {
    expect(codeOf(() => Rcqb.open(uniqueName('missing')))).toBe('ERR_RCQB_NOT_FOUND');
    const name = uniqueName('garbage');
    writeFileSync(`/dev/shm/${name}`, Buffer.alloc(4096, 0xab), { mode: 0o600 });
    expect(codeOf(() => Rcqb.open(name))).toBe('ERR_RCQB_BAD_LAYOUT');
    writeFileSync(`/dev/shm/${name}`, Buffer.alloc(10, 0), { mode: 0o600 });
    expect(codeOf(() => Rcqb.open(name))).toBe('ERR_RCQB_BAD_LAYOUT');
    unlinkSync(`/dev/shm/${name}`);
  });

  it('create refuses an existing name; the segment is private to its owner', async () => {
    const name = uniqueName('excl');
    Rcqb.create({ capacity: 4, itemSize: 8, name });
    expect(codeOf(() => Rcqb.create({ capacity: 4, itemSize: 8, name }))).toBe('ERR_RCQB_EXISTS');
    const { statSync } = await import('node:fs');
    expect(statSync(`/dev/shm/${name}`).mode & 0o777).toBe(0o600);
  });

  it('an anonymous handle does not cross processes', () => {
    const h: RcqbHandle = { kind: 'anonymous', id: 1, pid: process.pid + 1 };
    expect(codeOf(() => Rcqb.attach(h))).toBe('ERR_RCQB_INVALID_ARGUMENT');
    expect(codeOf(() => Rcqb.attach({ kind: 'anonymous', id: 999_999, pid: process.pid }))).toBe('ERR_RCQB_NOT_FOUND');
  });
});

describe('async twins', () => {
  it('dequeueAsync waits off the event loop and resolves when an item arrives', async () => {
    const q = Rcqb.create({ capacity: 4, itemSize: 8 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const pending = q.dequeueAsync({ timeout: 5000 });
    await new Promise((r) => setTimeout(r, 60));
    q.enqueue(Buffer.from('late'));
    const got = await pending;
    clearInterval(timer);
    expect(got.toString()).toBe('late');
    expect(ticks).toBeGreaterThanOrEqual(5); // the event loop kept running
  });

  it('an AbortSignal aborts a waiting dequeueAsync and the next item is not lost', async () => {
    const q = Rcqb.create({ capacity: 4, itemSize: 8 });
    const ac = new AbortController();
    const pending = q.dequeueAsync({ signal: ac.signal });
    setTimeout(() => ac.abort(), 30);
    await expect(pending).rejects.toMatchObject({ code: 'ERR_RCQB_ABORTED' });
    q.enqueueNumber(11);
    expect(q.dequeueNumber({ timeout: 1000 })).toBe(11);
    await expect(q.dequeueAsync({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_RCQB_ABORTED' });
    await expect(q.enqueueAsync(Buffer.alloc(8), { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ERR_RCQB_ABORTED',
    });
    expect(q.length).toBe(0); // the aborted enqueue did not enqueue
  });

  it('timed async forms reject with ERR_RCQB_TIMEOUT; enqueueAsync waits for room', async () => {
    const q = Rcqb.create({ capacity: 1, itemSize: 8 });
    await expect(q.dequeueAsync({ timeout: 20 })).rejects.toMatchObject({ code: 'ERR_RCQB_TIMEOUT' });
    q.enqueueNumber(1);
    const put = q.enqueueAsync(Buffer.alloc(8, 9), { timeout: 5000 });
    setTimeout(() => q.dequeueNumber(), 30);
    await put;
    expect(q.dequeue()).toEqual(Buffer.alloc(8, 9));
  });
});

interface Report {
  got?: number[];
}

function expectExactlyOnce(reports: Report[], producers: number, count: number): void {
  const got = reports.flatMap((r) => r.got ?? []).sort((a, b) => a - b);
  const want: number[] = [];
  for (let p = 0; p < producers; p++) for (let i = 0; i < count; i++) want.push(p * 2 ** 20 + i);
  expect(got.length).toBe(want.length);
  expect(got).toEqual(want.sort((a, b) => a - b));
}

async function runWorkers(handle: RcqbHandle, producers: number, consumers: number, count: number, numbers: boolean, q: Rcqb) {
  const start = (args: object) =>
    new Promise<Report>((resolve, reject) => {
      const w = new Worker(participant, { workerData: { handle, numbers, ...args } });
      w.once('message', resolve);
      w.once('error', reject);
    });
  const cs = Array.from({ length: consumers }, (_, i) => start({ role: 'consume', idx: 100 + i }));
  await Promise.all(Array.from({ length: producers }, (_, idx) => start({ role: 'produce', idx, count })));
  q.close();
  return Promise.all(cs);
}

describe('many participants: every item dequeued exactly once', () => {
  it('4 producer and 4 consumer worker threads on an anonymous queue', async () => {
    const q = Rcqb.create({ capacity: 16, itemSize: 8 });
    expectExactlyOnce(await runWorkers(q.handle, 4, 4, 5000, true, q), 4, 5000);
  });

  it('worker threads with byte items on a named queue', async () => {
    const q = Rcqb.create({ capacity: 8, itemSize: 64, name: uniqueName('workers') });
    expectExactlyOnce(await runWorkers(q.handle, 3, 2, 3000, false, q), 3, 3000);
  });

  it('3 producer and 3 consumer processes', async () => {
    const q = Rcqb.create({ capacity: 32, itemSize: 32, name: uniqueName('procs') });
    const start = (args: object) =>
      new Promise<Report>((resolve, reject) => {
        const c = fork(participant, [JSON.stringify({ handle: q.handle, numbers: false, ...args })]);
        let report: Report = {};
        c.on('message', (m) => (report = m as Report));
        c.once('error', reject);
        c.once('exit', (code) => (code === 0 ? resolve(report) : reject(new Error(`child exited ${code}`))));
      });
    const cs = Array.from({ length: 3 }, (_, i) => start({ role: 'consume', idx: 100 + i }));
    await Promise.all(Array.from({ length: 3 }, (_, idx) => start({ role: 'produce', idx, count: 4000 })));
    q.close();
    expectExactlyOnce(await Promise.all(cs), 3, 4000);
  });
});
