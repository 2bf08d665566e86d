import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { constants } from 'node:fs';
import { constants as os } from 'node:os';
import { fileURLToPath } from 'node:url';
import { FrontDriver, Opcode, PROTOCOL_VERSION, encodeRequest } from '@polytropon/ipc';
import { LocalLibservice } from '@polytropon/libservice';
import { describeConformance, expectCode, readFile, syncTwins, temporaryDirectory, writeFile } from '@polytropon/libservice/conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IoServiceClient } from './client.js';
import { instance, ServiceProcess } from './fixtures/service-process.js';
import { IoService } from './service.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const clientScript = fixture('client.mjs');

const until = async (f: () => Promise<boolean>, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

let svc: ServiceProcess;
beforeAll(async () => {
  svc = await ServiceProcess.start('main', { maxHandlesPerProcess: 64 });
});
afterAll(async () => {
  await svc.stop();
});

describeConformance('through the I/O service: client -> ipc -> service -> union -> local', async () => {
  const inst = await instance(svc);
  return { service: IoServiceClient.attach(svc.endpoint, inst.name), dispose: inst.dispose };
});

describeConformance('the sync twins, through the I/O service', async () => {
  const inst = await instance(svc);
  return { service: syncTwins(IoServiceClient.attach(svc.endpoint, inst.name)), dispose: inst.dispose };
});

describe('IoService', () => {
  it('routes by instance: an unknown one is ENOENT, a rename across two is EXDEV', async () => {
    const a = await instance(svc);
    const b = await instance(svc);
    const ca = IoServiceClient.attach(svc.endpoint, a.name);
    const cx = IoServiceClient.attach(svc.endpoint, 'no-such-instance');
    await writeFile(ca, '/f', 'in a');
    await expectCode(cx.stat('/'), 'ENOENT', 'stat', '/');
    // '..' cannot climb out of an instance into another.
    await expectCode(ca.stat(`/../${b.name}/f`), 'ENOENT');
    const raw = FrontDriver.attach(svc.endpoint);
    const r = raw.call(Opcode.Rename, encodeRequest(Opcode.Rename, { from: `/${a.name}/f`, to: `/${b.name}/f`, flags: 0 }));
    expect(r.status).toBe(-os.errno.EXDEV);
    raw.detach();
    for (const c of [ca, cx]) await c.unmount();
    await a.dispose();
    await b.dispose();
  });

  // A union is served in JS; a plain local directory by the native end.
  for (const [kind, lowers] of [['a union', 1], ['a plain local directory', -1]] as const) {
    it(`handles belong to the process: its clients (one per thread) share them, up to maxHandlesPerProcess (EMFILE), on ${kind}`, async () => {
      const inst = await instance(svc, lowers);
      const c1 = IoServiceClient.attach(svc.endpoint, inst.name);
      const c2 = IoServiceClient.attach(svc.endpoint, inst.name);
      await writeFile(c1, '/f', 'shared');
      const base = (await svc.stats()).openHandles;
      const hs: number[] = [];
      for (let i = base; i < 64; i++) hs.push(await (i % 2 ? c1 : c2).open('/f', constants.O_RDONLY));
      await expectCode(c1.open('/f', constants.O_RDONLY), 'EMFILE', 'open', '/f');
      await expectCode(c2.open('/f', constants.O_RDONLY), 'EMFILE', 'open', '/f');
      // A handle one client opened, another of the same process uses.
      const b = Buffer.alloc(6);
      expect(await c2.read(hs[1]!, b, 0, 6, 0)).toBe(6);
      expect(b.toString()).toBe('shared');
      await expectCode(c2.close(987654), 'EBADF', 'close');
      for (const h of hs) await c1.close(h);
      await c1.close(await c1.open('/f', constants.O_RDONLY));
      await c1.unmount();
      await c2.unmount();
      await inst.dispose();
    });

    it(`closes the handles of a process that dies, and of one whose last client detaches, on ${kind}`, async () => {
      const inst = await instance(svc, lowers);
      const base = (await svc.stats()).openHandles;
      const child = spawn(process.execPath, [clientScript, svc.endpoint, inst.name, '20'], { stdio: ['ignore', 'pipe', 'inherit'] });
      await once(child.stdout!, 'data');
      expect((await svc.stats()).openHandles).toBe(base + 20);
      child.kill('SIGKILL');
      await until(async () => (await svc.stats()).openHandles === base);
      const c = IoServiceClient.attach(svc.endpoint, inst.name);
      for (let i = 0; i < 5; i++) await c.open(`/g${i}`, constants.O_CREAT | constants.O_RDWR, 0o644);
      expect((await svc.stats()).openHandles).toBe(base + 5);
      await c.unmount();
      await until(async () => (await svc.stats()).openHandles === base).catch(async (e) => {
        throw new Error(`${e}: ${JSON.stringify({ ...(await svc.stats()), operations: undefined, base })}`);
      });
      await inst.dispose();
    });
  }

  it('counts the handles of a process on both sides against maxHandlesPerProcess', async () => {
    const union = await instance(svc);
    const plain = await instance(svc, -1);
    const cu = IoServiceClient.attach(svc.endpoint, union.name);
    const cp = IoServiceClient.attach(svc.endpoint, plain.name);
    await writeFile(cu, '/f', 'u');
    await writeFile(cp, '/f', 'p');
    const base = (await svc.stats()).openHandles;
    const hs: [IoServiceClient, number][] = [];
    for (let i = base; i < 64; i++) {
      const c = i % 2 ? cu : cp;
      hs.push([c, await c.open('/f', constants.O_RDONLY)]);
    }
    await expectCode(cu.open('/f', constants.O_RDONLY), 'EMFILE', 'open', '/f');
    await expectCode(cp.open('/f', constants.O_RDONLY), 'EMFILE', 'open', '/f');
    expect((await svc.stats()).openHandles).toBe(64);
    for (const [c, h] of hs) await c.close(h);
    await cp.close(await cp.open('/f', constants.O_RDONLY));
    for (const c of [cu, cp]) await c.unmount();
    await union.dispose();
    await plain.dispose();
  });

  it('answers malformed and unknown requests with an error, counted, and keeps serving', async () => {
    const inst = await instance(svc);
    const before = (await svc.stats()).badRequests;
    const raw = FrontDriver.attach(svc.endpoint);
    expect(raw.call(Opcode.Open, Buffer.from([PROTOCOL_VERSION, 255, 255, 255, 255])).status).toBe(-os.errno.EBADMSG);
    expect(raw.call(Opcode.Stat, Buffer.from([9])).status).toBe(-os.errno.EBADMSG); // another protocol version
    expect(raw.call(777, Buffer.alloc(3)).status).toBe(-os.errno.ENOSYS);
    expect(raw.call(Opcode.Read, encodeRequest(Opcode.Read, { fd: 12345, length: 10, position: 0 })).status).toBe(-os.errno.EBADF);
    expect(raw.call(Opcode.Read, encodeRequest(Opcode.Read, { fd: 1, length: 0xffffffff, position: 0 })).status).toBe(-os.errno.EBADF);
    raw.detach();
    expect((await svc.stats()).badRequests).toBe(before + 3);
    const c = IoServiceClient.attach(svc.endpoint, inst.name);
    await writeFile(c, '/still', 'serving');
    expect(await readFile(c, '/still')).toBe('serving');
    await c.unmount();
    await inst.dispose();
  });

  it('counts every operation with its errors and latency', async () => {
    const inst = await instance(svc);
    const c = IoServiceClient.attach(svc.endpoint, inst.name);
    const before = (await svc.stats()).operations.stat?.count ?? 0;
    await writeFile(c, '/f', 'x');
    for (let i = 0; i < 10; i++) await c.stat('/f');
    await c.stat('/missing').catch(() => {});
    const s = (await svc.stats()).operations.stat!;
    expect(s.count).toBe(before + 11);
    expect(s.errors).toBeGreaterThanOrEqual(1);
    expect(s.p50Us).toBeGreaterThan(0);
    expect(s.p99Us).toBeGreaterThanOrEqual(s.p50Us);
    expect(s.histogram.reduce((a, b) => a + b, 0)).toBe(s.count);
    await c.unmount();
    await inst.dispose();
  });
});

describe('IoService under churn', () => {
  // On a union (served in JS) and a plain directory (served natively, handles and all).
  it.each([['a union', 1], ['a plain local directory', -1]] as const)('many processes with two clients each, coming and going, on %s: every result right, nothing left open', async (_kind, lowers) => {
    const inst = await instance(svc, lowers);
    const base = await svc.stats();
    const procs = Array.from({ length: 6 }, (_, id) =>
      spawn(process.execPath, [fixture('churn.mjs'), svc.endpoint, inst.name, String(id), '120'], { stdio: 'inherit' }),
    );
    const codes = await Promise.all(procs.map(async (p) => (await once(p, 'exit'))[0]));
    expect(codes).toEqual([0, 0, 0, 0, 0, 0]);
    const end = Date.now() + 5000;
    let now = await svc.stats();
    // (This test's own process may have come or gone meanwhile: none of the churners is left.)
    while ((now.openHandles !== base.openHandles || now.processes > base.processes) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
      now = await svc.stats();
    }
    expect(now.openHandles).toBe(base.openHandles);
    expect(now.processes).toBeLessThanOrEqual(base.processes);
    // Every process left its even-numbered files, renamed.
    const c = IoServiceClient.attach(svc.endpoint, inst.name);
    const names = (await c.readdir('/')).map((e) => e.name);
    expect(names.length).toBe(6 * 60);
    expect(names.every((n) => n.endsWith('.done'))).toBe(true);
    await c.unmount();
    await inst.dispose();
  });
});

describe('IoService stop', () => {
  it('finishes what is in flight, then clients fail promptly with a clear error', async () => {
    const own = await ServiceProcess.start('stop');
    const inst = await instance(own);
    const c = IoServiceClient.attach(own.endpoint, inst.name);
    await writeFile(c, '/f', 'before stop');
    const h = await c.open('/f', constants.O_RDONLY);
    await own.stop();
    const t0 = Date.now();
    await expect(c.stat('/f')).rejects.toMatchObject({ code: 'ERR_IPC_SERVICE_GONE' });
    await expect(c.read(h, Buffer.alloc(4), 0, 4, 0)).rejects.toMatchObject({ code: 'ERR_IPC_SERVICE_GONE' });
    expect(Date.now() - t0).toBeLessThan(5000);
    await c.unmount();
    await once(own.child, 'exit');
  });
});

describe('IoService.mount', () => {
  it('refuses a bad instance name or a non-libservice with node-style argument errors', async () => {
    const dir = await temporaryDirectory('mount-');
    const svc = IoService.create({ endpoint: `mount-test-${process.pid}` });
    const local = await LocalLibservice.create({ root: dir.path });
    expect(() => svc.mount('a/b', local)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/^instance name: /) }));
    expect(() => svc.mount('', local)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => svc.mount('ok', {} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    svc.mount('ok', local);
    expect(() => svc.mount('ok', local)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    await local.unmount();
    await dir.remove();
  });
});
