import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { BackDriver, FrontDriver, IpcError } from './index.js';
import { fromNative } from './errors.js';
import { native } from './native.js';
import { codeOf as codeOfType } from '../../../tooling/test-helpers.js';

const peerScript = fileURLToPath(new URL('./fixtures/peer.mjs', import.meta.url));
const children: ChildProcess[] = [];
const backs: BackDriver[] = [];
let n = 0;
const endpoint = (tag: string) => `ipc-js-${tag}-${process.pid}-${n++}`;

afterEach(async () => {
  // SIGTERM first: a service peer then closes its channel (removing its names).
  await Promise.all(
    children.splice(0).map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = once(c, 'exit');
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 1000);
      await exited;
      clearTimeout(timer);
    }),
  );
  for (const b of backs.splice(0)) await b.close();
});

function peer(args: string[]): ChildProcess {
  const c = fork(peerScript, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  children.push(c);
  return c;
}

async function line(c: ChildProcess, want: string): Promise<void> {
  let seen = '';
  for await (const chunk of c.stdout!) {
    seen += String(chunk);
    if (seen.includes(want)) return;
  }
  throw new Error(`child ended before printing ${want}`);
}

function echoService(name: string, options = {}): BackDriver {
  const back = BackDriver.create(name, { buffers: 16, bufferSize: 64 * 1024, ...options });
  backs.push(back);
  void back.serve((req) => ({ status: req.opcode, data: req.payload }));
  return back;
}

const codeOf = (f: () => unknown) => codeOfType(IpcError, f);

describe('FrontDriver and BackDriver', () => {
  it('echo between two processes, sync and async, small and fragmented', async () => {
    const name = endpoint('echo');
    const svc = peer(['service', name]);
    await line(svc, 'ready');
    const front = FrontDriver.attach(name);
    expect(front.call(7)).toEqual({ status: 7, data: Buffer.alloc(0) });
    for (const len of [1, 4096, 64 * 1024, 64 * 1024 + 1, 1 << 20]) {
      const payload = Buffer.alloc(len, len % 251);
      const sync = front.call(3, payload);
      expect(sync.status).toBe(3);
      expect(sync.data.equals(payload)).toBe(true);
      const async = await front.callAsync(4, payload);
      expect(async.status).toBe(4);
      expect(async.data.equals(payload)).toBe(true);
    }
    // Async calls of one driver queue up; a sync call meanwhile is refused.
    const many = [1, 2, 3].map((i) => front.callAsync(i, Buffer.from([i])));
    expect(codeOf(() => front.call(1))).toBe('ERR_IPC_BUSY');
    expect((await Promise.all(many)).map((r) => [r.status, r.data[0]])).toEqual([[1, 1], [2, 2], [3, 3]]);
    // call() returns copies that later calls leave alone; callView() a
    // view of the driver's reply buffer, which the next call overwrites.
    const kept = front.call(1, Buffer.from('first'));
    const view = front.callView(1, Buffer.from('view!'));
    expect(view.data.toString()).toBe('view!');
    front.call(1, Buffer.from('later'));
    expect(kept.data.toString()).toBe('first');
    expect(view.data.toString()).toBe('later');
    // A view sent on as the next payload is read before the reply lands.
    const again = front.callView(3, front.callView(1, Buffer.from('round')).data);
    expect([again.status, again.data.toString()]).toEqual([3, 'round']);
    for (const len of [0, 1, 70_000, 1 << 20]) {
      const payload = Buffer.alloc(len, (len % 13) + 1);
      const r = front.callView(2, payload);
      expect([len, r.status, r.data.length, r.data.equals(payload)]).toEqual([len, 2, len, true]);
    }
    // callSplit: the reply's head into one place, the rest straight into
    // another (fragments too), nothing written past it.
    for (const len of [0, 1, 5, 64 * 1024, 64 * 1024 + 1, 3 * 64 * 1024 + 7]) {
      const payload = Buffer.from(Array.from({ length: len }, (_, i) => (i * 7) % 251));
      const head = Buffer.alloc(Math.min(3, len), 0xee);
      const body = Buffer.alloc(len - head.length + 5, 0xee);
      expect(front.callSplit(6, payload, head, body)).toEqual({ status: 6, length: len });
      expect(Buffer.concat([head, body.subarray(0, len - head.length)]).equals(payload)).toBe(true);
      expect(body.subarray(len - head.length).every((b) => b === 0xee)).toBe(true);
    }
    const room = Buffer.alloc(8);
    expect(codeOf(() => front.callSplit(6, Buffer.alloc(20), room.subarray(0, 1), room.subarray(1)))).toBe('ERR_IPC_PROTOCOL');
    expect(codeOf(() => front.callSplit(6, Buffer.alloc(4), room.subarray(0, 2), room.subarray(1)))).toBe('ERR_IPC_INVALID_ARGUMENT');
    expect(front.call(5, Buffer.from('still usable')).data.toString()).toBe('still usable');
    // A payload that lies where its reply goes is read before the reply lands.
    room.write('abcdefgh');
    expect(front.callSplit(6, room.subarray(2, 6), room.subarray(0, 1), room.subarray(1, 4))).toEqual({ status: 6, length: 4 });
    expect(room.toString()).toBe('cdefefgh');
    front.detach();
    expect(codeOf(() => front.call(1))).toBe('ERR_IPC_DETACHED');
    expect(codeOf(() => front.callView(1))).toBe('ERR_IPC_DETACHED');
    expect(codeOf(() => front.callSplit(1, undefined, Buffer.alloc(1), Buffer.alloc(1)))).toBe('ERR_IPC_DETACHED');
  });

  it('many client processes and worker threads, every reply matched to its request', async () => {
    const name = endpoint('many');
    echoService(name);
    const clients = [0, 1, 2].map(() => peer(['client', name, '2000']));
    const workers = [0, 1].map(
      () =>
        new Worker(
          `const { FrontDriver } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
           const { parentPort, threadId } = await import('node:worker_threads');
           const f = FrontDriver.attach(${JSON.stringify(name)});
           let ok = true;
           for (let i = 0; i < 2000; i++) {
             const p = Buffer.from('w' + threadId + ':' + i);
             const r = i % 2 ? f.call(i, p) : await f.callAsync(i, p);
             if (r.status !== i || !r.data.equals(p)) ok = false;
           }
           f.detach();
           parentPort.postMessage(ok);`,
          { eval: true } as never,
        ),
    );
    const results = await Promise.all([
      ...clients.map(async (c) => ((await once(c, 'message'))[0] as { ok: boolean }).ok),
      ...workers.map(async (w) => (await once(w, 'message'))[0] as boolean),
    ]);
    expect(results).toEqual([true, true, true, true, true]);
    await Promise.all(workers.map((w) => w.terminate()));
  });

  it('payload views: every handler, sync or async and answered in any order, sees its own request until it answers', async () => {
    const name = endpoint('views');
    const back = BackDriver.create(name, { buffers: 16, bufferSize: 64 * 1024 });
    backs.push(back);
    let seen = 0;
    void back.serve(
      (req) => {
        const want = req.payload.toString('latin1');
        const check = () => {
          // Still this request's bytes, however many batches came since.
          if (req.payload.toString('latin1') !== want) return { status: -5 };
          seen++;
          return { status: req.opcode, data: req.payload };
        };
        if (req.opcode % 3 === 0) return check();
        return new Promise((res) => setTimeout(() => res(check()), (req.opcode * 7) % 5));
      },
      { payloadViews: true },
    );
    // Three drivers: each async call that waits holds a libuv thread, which
    // this same thread's service also needs to sleep and wake.
    const fronts = Array.from({ length: 3 }, () => FrontDriver.attach(name));
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 400; i++) {
      const f = fronts[i % fronts.length]!;
      const payload = Buffer.from(`request ${i} `.repeat((i % 50) + 1) + 'x'.repeat(i % 3 === 1 ? 60_000 : 0), 'latin1');
      calls.push(f.callAsync(i, payload).then((r) => void expect([r.status, r.data.equals(payload)]).toEqual([i, true])));
    }
    await Promise.all(calls);
    expect(seen).toBe(400);
    for (const f of fronts) f.detach();
  });

  it('releases the memory of a reply once it is in the channel, and only then', async () => {
    // A handler answering from a pool of buffers: each is given back by
    // `release` after its reply was copied out, so a buffer reused at once
    // by the next request never spoils an earlier reply.
    const name = endpoint('release');
    const back = BackDriver.create(name, { buffers: 16, bufferSize: 64 * 1024 });
    backs.push(back);
    const pool: Buffer[] = [];
    let released = 0;
    let inUse = 0;
    void back.serve((req) => {
      const buf = pool.pop() ?? Buffer.alloc(70_000);
      inUse++;
      const len = req.opcode === 2 ? 70_000 : req.payload.length;
      buf.fill(req.payload[0] ?? 0, 0, len);
      const release = () => {
        inUse--;
        released++;
        buf.fill(0xff); // spoil it: a reply copied out after this would show
        pool.push(buf);
      };
      const r = { status: req.opcode, data: buf.subarray(0, len), release };
      return req.opcode === 3 ? new Promise((res) => setTimeout(() => res(r), 1)) : r;
    });
    const front = FrontDriver.attach(name);
    for (let i = 0; i < 60; i++) {
      const op = (i % 3) + 1;
      const byte = i % 200;
      const r = await front.callAsync(op, op === 3 ? Buffer.from([byte, 1]) : Buffer.from([byte, 1, 2]));
      expect(r.status).toBe(op);
      expect(r.data.length).toBe(op === 2 ? 70_000 : op === 3 ? 2 : 3);
      expect(r.data.every((b) => b === byte), `reply ${i}`).toBe(true);
    }
    expect([released, inUse]).toEqual([60, 0]);
    front.detach();
  });

  it('a killed client is reported gone and its buffer reused', async () => {
    const name = endpoint('reap');
    const back = BackDriver.create(name, { buffers: 1, bufferSize: 4096 });
    backs.push(back);
    const gone: number[] = [];
    void back.serve((req) => (req.opcode === 9 ? new Promise(() => {}) : { status: 0 }), { onClientGone: (c) => gone.push(c) });
    const c = peer(['hang', name]);
    await line(c, 'attached');
    await new Promise((r) => setTimeout(r, 50));
    expect(codeOf(() => FrontDriver.attach(name))).toBe('ERR_IPC_NO_BUFFERS');
    c.kill('SIGKILL');
    await once(c, 'exit');
    await new Promise((r) => setTimeout(r, 300));
    expect(gone).toHaveLength(1);
    // The service runs on this thread: call it asynchronously (a sync call
    // would block the event loop the service needs).
    const front = FrontDriver.attach(name);
    expect((await front.callAsync(1)).status).toBe(0);
  });

  it('a service that dies or closes fails its clients promptly with ERR_IPC_SERVICE_GONE', async () => {
    const name = endpoint('death');
    const svc = peer(['service', name]);
    await line(svc, 'ready');
    const front = FrontDriver.attach(name);
    const pending = front.callAsync(9); // held by the service
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    svc.kill('SIGKILL');
    await expect(pending).rejects.toMatchObject({ code: 'ERR_IPC_SERVICE_GONE' });
    expect(Date.now() - t0).toBeLessThan(1000);
    // The dead service's names stayed; a new one takes the endpoint over.
    const again = echoService(name);
    expect((await FrontDriver.attach(name).callAsync(6)).status).toBe(6);
    void again;

    const name2 = endpoint('close');
    const back = echoService(name2);
    const f2 = FrontDriver.attach(name2);
    expect((await f2.callAsync(2)).status).toBe(2);
    await back.close();
    await expect(f2.callAsync(2)).rejects.toMatchObject({ code: 'ERR_IPC_SERVICE_GONE' });
    expect(codeOf(() => FrontDriver.attach(name2))).toBe('ERR_IPC_NOT_FOUND');
  });

  it.runIf(process.getuid?.() === 0)('another user cannot attach (segments are 0600)', async () => {
    const name = endpoint('foreign');
    echoService(name);
    const c = peer(['foreign', name]);
    expect((await once(c, 'message'))[0]).toEqual({ code: 'ERR_IPC_ACCESS_DENIED' });
  });

  it('tells the service which process each client is', async () => {
    const name = endpoint('pid');
    const back = BackDriver.create(name, { buffers: 4, bufferSize: 64 * 1024 });
    backs.push(back);
    const pids: number[] = [];
    void back.serve((req) => {
      pids.push(req.pid);
      return { status: 0 };
    });
    const a = FrontDriver.attach(name);
    const b = FrontDriver.attach(name);
    await a.callAsync(1);
    await b.callAsync(1);
    expect(pids).toEqual([process.pid, process.pid]);
    a.detach();
    b.detach();
  });

  it('refuses a sync call to a service this same thread serves, instead of hanging', async () => {
    const name = endpoint('self');
    const back = echoService(name);
    const front = FrontDriver.attach(`/${name}`);
    expect(codeOf(() => front.call(1))).toBe('ERR_IPC_SAME_THREAD');
    expect((await front.callAsync(3, Buffer.from('ok'))).data.toString()).toBe('ok');
    front.detach();
    await back.close();
    backs.splice(backs.indexOf(back), 1);
  });

  it("a driver's native handle answers only on the thread that attached it, and forged ones get a code", async () => {
    const name = endpoint('handles');
    const back = native.NativeBack.create(`/${name}`, 1, 64, 4, 64 * 1024, 64 * 1024);
    const front = native.NativeFront.attach(`/${name}`, 0, null);
    const reply = Buffer.alloc(64);
    const len = new Float64Array(1);
    const nativeCode = (f: () => unknown) => codeOfType(IpcError, () => {
      try {
        return f();
      } catch (e) {
        throw fromNative(e);
      }
    });
    for (const forged of [0, 1, 0xffff, 0x7fff_ffff, 0xffff_ffff, front.handle ^ 0x8000_0000]) {
      expect(nativeCode(() => native.frontCall(forged, 1, Buffer.alloc(0), reply, len))).toBe('ERR_IPC_INVALID_ARGUMENT');
      expect(nativeCode(() => native.backTake(forged, 1, 0, reply))).toBe('ERR_IPC_INVALID_ARGUMENT');
    }
    // Another thread of this process holds the same numbers but not the entries.
    const w = new Worker(
      `const { parentPort, workerData } = await import('node:worker_threads');
       const b = (await import('node:module')).createRequire(${JSON.stringify(import.meta.url)})('../ipc.linux-x64-gnu.node');
       const out = [];
       for (const f of [() => b.frontCall(workerData.front, 1, Buffer.alloc(0), Buffer.alloc(8), new Float64Array(1)), () => b.backTake(workerData.back, 1, 0, Buffer.alloc(64)), () => b.backComplete(workerData.back, 0, 0, 0, Buffer.alloc(0))]) {
         try { f(); out.push('answered'); } catch (e) { out.push(String(e.message).split(':')[0]); }
       }
       parentPort.postMessage(out);`,
      { eval: true, workerData: { front: front.handle, back: back.handle } } as never,
    );
    expect((await once(w, 'message'))[0]).toEqual(['ERR_IPC_INVALID_ARGUMENT', 'ERR_IPC_INVALID_ARGUMENT', 'ERR_IPC_INVALID_ARGUMENT']);
    await w.terminate();
    // Still this thread's, and working.
    native.frontStart(front.handle, 5, Buffer.from('x'));
    expect(native.backTake(back.handle, 4, 1e6, Buffer.alloc(4096))).toBe(1);
    front.detach();
    expect(nativeCode(() => native.frontCall(front.handle, 1, Buffer.alloc(0), reply, len))).toBe('ERR_IPC_DETACHED');
    back.close();
    expect(nativeCode(() => native.backTake(back.handle, 1, 0, reply))).toBe('ERR_IPC_DETACHED');
  });

  it('refuses bad options and arguments with codes', () => {
    expect(codeOf(() => FrontDriver.attach('no-such-endpoint-x'))).toBe('ERR_IPC_NOT_FOUND');
    expect(codeOf(() => FrontDriver.attach('a/b'))).toBe('ERR_IPC_INVALID_ARGUMENT');
    expect(codeOf(() => BackDriver.create(endpoint('bad'), { bufferSize: 1000 }))).toBe('ERR_IPC_INVALID_ARGUMENT');
    expect(codeOf(() => BackDriver.create(endpoint('bad'), { queueCapacity: 1000 }))).toBe('ERR_IPC_INVALID_ARGUMENT');
    expect(codeOf(() => BackDriver.create(endpoint('bad'), { nope: 1 } as never))).toBe('ERR_IPC_INVALID_ARGUMENT');
    const name = endpoint('args');
    echoService(name);
    expect(codeOf(() => BackDriver.create(name))).toBe('ERR_IPC_EXISTS');
    const f = FrontDriver.attach(name);
    expect(codeOf(() => f.call(0xffff0000))).toBe('ERR_IPC_INVALID_ARGUMENT');
    expect(codeOf(() => f.call(-1))).toBe('ERR_IPC_INVALID_ARGUMENT');
    expect(codeOf(() => f.call(1, 'text' as never))).toBe('ERR_IPC_INVALID_ARGUMENT');
  });
});
