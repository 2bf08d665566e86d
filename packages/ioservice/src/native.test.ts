// The native path: lookups and files of plain local-directory instances
// answered in the service's take loop (native/src/lib.rs and
// crates/local-instance). Whatever it answers must be what the JavaScript
// path answers: the conformance suite runs over it (its randomized steps
// open, read, write and close files against node:fs), and a differential
// test compares lookups on the two paths on random paths through symlinks,
// escapes and loops.
import { constants, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { constants as os } from 'node:os';
import { join } from 'node:path';
import { FrontDriver, Opcode, PROTOCOL_VERSION, encodeRequest } from '@polytropon/ipc';
import { describeConformance, syncTwins, temporaryDirectory } from '@polytropon/libservice/conformance';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IoServiceClient } from './client.js';
import { instance, ServiceProcess } from './fixtures/service-process.js';

/** `instance(svc, PLAIN)`: a plain local directory, no union. */
const PLAIN = -1;

let native: ServiceProcess;
let js: ServiceProcess;
beforeAll(async () => {
  native = await ServiceProcess.start('native');
  js = await ServiceProcess.start('js', { nativeLocal: false });
});
afterAll(async () => {
  await native.stop();
  await js.stop();
});

describeConformance('a local instance through the I/O service, its lookups answered natively', async () => {
  const inst = await instance(native, PLAIN);
  return { service: IoServiceClient.attach(native.endpoint, inst.name), dispose: inst.dispose };
});

describeConformance('the sync twins, a local instance answered natively', async () => {
  const inst = await instance(native, PLAIN);
  return { service: syncTwins(IoServiceClient.attach(native.endpoint, inst.name)), dispose: inst.dispose };
});

/** A tree with every kind of lookup trouble: symlinks relative, absolute, climbing out, looping, dangling; a file in the middle. */
function plantTree(root: string): void {
  mkdirSync(join(root, 'a/b'), { recursive: true });
  writeFileSync(join(root, 'a/f'), 'file');
  writeFileSync(join(root, 'a/b/g'), 'deeper');
  symlinkSync('a/f', join(root, 'rel'));
  symlinkSync('/a/b', join(root, 'abs'));
  symlinkSync('../../..', join(root, 'up'));
  symlinkSync('a/../up/a', join(root, 'via-up'));
  symlinkSync('loop2', join(root, 'loop1'));
  symlinkSync('loop1', join(root, 'loop2'));
  symlinkSync('nowhere', join(root, 'dangling'));
  symlinkSync('f', join(root, 'a/self'));
}

type Outcome = { code: string } | { value: unknown };
async function outcome(p: Promise<unknown>): Promise<Outcome> {
  try {
    const v = await p;
    // atime moves as directories are read; the rest must be equal.
    if (v && typeof v === 'object' && 'atimeMs' in v) return { value: { ...v, atimeMs: 0 } };
    return { value: v };
  } catch (e) {
    return { code: (e as { code: string }).code };
  }
}

describe('the native path', () => {
  it('answers exactly what the JavaScript path answers, on random paths', async () => {
    const dir = await temporaryDirectory('ioservice-native-');
    const root = join(dir.path, 'root');
    mkdirSync(root);
    plantTree(root);
    // The same directory as an instance of each service.
    await native.request({ mount: 'same', dirs: [root], union: false });
    await js.request({ mount: 'same', dirs: [root], union: false });
    expect((await native.stats()).nativeInstances).toContain('same');
    expect((await js.stats()).nativeInstances).toEqual([]);
    const a = IoServiceClient.attach(native.endpoint, 'same');
    const b = IoServiceClient.attach(js.endpoint, 'same');
    const component = fc.constantFrom('a', 'b', 'f', 'g', 'rel', 'abs', 'up', 'via-up', 'loop1', 'dangling', 'self', 'missing', '..', '.', '');
    const path = fc.tuple(fc.array(component, { maxLength: 6 }), fc.boolean()).map(([cs, slash]) => '/' + cs.join('/') + (slash ? '/' : ''));
    const op = fc.constantFrom('stat', 'lstat', 'readdir') as fc.Arbitrary<'stat' | 'lstat' | 'readdir'>;
    const before = (await native.stats()).operations;
    let asked = 0;
    await fc.assert(
      fc.asyncProperty(op, path, async (o, p) => {
        asked++;
        expect(await outcome(a[o](p)), `${o} ${p}`).toEqual(await outcome(b[o](p)));
        expect(await outcome(Promise.resolve().then(() => a[`${o}Sync`](p))), `${o}Sync ${p}`).toEqual(await outcome(b[o](p)));
      }),
      { numRuns: 400 },
    );
    // Answered natively indeed: the service's JS handler saw none of them.
    const after = (await native.stats()).operations;
    const count = (s: typeof after) => ['stat', 'lstat', 'readdir'].reduce((n, k) => n + (s[k]?.count ?? 0), 0);
    expect(count(after) - count(before)).toBe(2 * asked);
    await a.unmount();
    await b.unmount();
    await native.request({ unmount: 'same' });
    await js.request({ unmount: 'same' });
    await dir.remove();
  });

  it('sees every namespace change made through the service at once (remembered directories), as the JavaScript path does', async () => {
    // Two identical trees, one per service; the same random renames,
    // removals and creations through each, and after every change the same
    // random lookups, which must agree (the native end resolves directories
    // once and remembers them: a change answered must be seen by the next request).
    const dir = await temporaryDirectory('ioservice-native-changes-');
    const roots = [join(dir.path, 'n'), join(dir.path, 'j')];
    for (const r of roots) {
      mkdirSync(r);
      plantTree(r);
      mkdirSync(join(r, 'a/b/c'), { recursive: true });
      writeFileSync(join(r, 'a/b/c/h'), 'deepest');
    }
    await native.request({ mount: 'changes', dirs: [roots[0]!], union: false });
    await js.request({ mount: 'changes', dirs: [roots[1]!], union: false });
    const a = IoServiceClient.attach(native.endpoint, 'changes');
    const b = IoServiceClient.attach(js.endpoint, 'changes');
    // Directories come and go at the places lookups go through.
    const place = fc.constantFrom('/a', '/a/b', '/a/b/c', '/x', '/x/c', '/y', '/a/y', '/x/b', '/abs');
    const probe = fc.constantFrom('/a/b/g', '/a/b/c/h', '/a/f', '/abs/g', '/abs/c/h', '/x/g', '/x/c/h', '/x/b/g', '/y/h', '/a/y/g', '/a/b', '/x', '/a/b/c');
    const path = fc.oneof(place, probe);
    type Change = ['rename', string, string] | ['rmdir', string] | ['unlink', string] | ['mkdir', string] | ['symlink', string, string] | ['write', string];
    const change: fc.Arbitrary<Change> = fc.oneof(
      fc.tuple(fc.constant('rename' as const), path, path),
      fc.tuple(fc.constant('rmdir' as const), path),
      fc.tuple(fc.constant('unlink' as const), path),
      fc.tuple(fc.constant('mkdir' as const), path),
      fc.tuple(fc.constant('symlink' as const), fc.constantFrom('a', 'a/b', '/a/b/c', 'x', '..', '/x/c'), path),
      fc.tuple(fc.constant('write' as const), path),
    );
    const apply = async (s: IoServiceClient, c: Change): Promise<Outcome> => {
      switch (c[0]) {
        case 'rename':
          return outcome(s.rename(c[1], c[2]));
        case 'rmdir':
          return outcome(s.rmdir(c[1]));
        case 'unlink':
          return outcome(s.unlink(c[1]));
        case 'mkdir':
          return outcome(s.mkdir(c[1], 0o755));
        case 'symlink':
          return outcome(s.symlink(c[1], c[2]));
        case 'write':
          return outcome(
            s.open(c[1], constants.O_CREAT | constants.O_WRONLY, 0o644).then(async (h) => {
              await s.write(h, Buffer.from(c[1]), 0, c[1].length, 0);
              await s.close(h);
            }),
          );
      }
    };
    /** What a lookup shows that two trees can share (not inode numbers or times). */
    const seen = async (p: Promise<unknown>): Promise<Outcome> => {
      const o = await outcome(p);
      if (!('value' in o)) return o;
      const v = o.value as { mode?: number; size?: number; nlink?: number } | unknown[];
      if (Array.isArray(v)) return o;
      return { value: { mode: v.mode, size: (v.mode! & constants.S_IFMT) === constants.S_IFDIR ? 0 : v.size, nlink: v.nlink } };
    };
    let changes = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(change, fc.array(probe, { minLength: 3, maxLength: 6 })), { minLength: 5, maxLength: 15 }), async (steps) => {
        for (const [c, looks] of steps) {
          changes++;
          // The same lookups before (their directories are remembered) and after the change.
          for (const p of looks) await a.stat(p).catch(() => {});
          expect(await apply(a, c), c.join(' ')).toEqual(await apply(b, c));
          for (const p of looks) {
            expect(await seen(a.stat(p)), `stat ${p} after ${c.join(' ')}`).toEqual(await seen(b.stat(p)));
            expect(await seen(Promise.resolve().then(() => a.lstatSync(p))), `lstatSync ${p} after ${c.join(' ')}`).toEqual(await seen(b.lstat(p)));
            expect(await seen(a.readdir(p)), `readdir ${p}`).toEqual(await seen(b.readdir(p)));
            const read = async (s: IoServiceClient) => {
              const h = await s.open(p, constants.O_RDONLY);
              try {
                const buf = Buffer.alloc(64);
                return buf.subarray(0, await s.read(h, buf, 0, 64, 0)).toString();
              } finally {
                await s.close(h);
              }
            };
            expect(await outcome(read(a)), `read ${p}`).toEqual(await outcome(read(b)));
          }
        }
      }),
      { numRuns: 40 },
    );
    expect(changes).toBeGreaterThan(200);
    await a.unmount();
    await b.unmount();
    await native.request({ unmount: 'changes' });
    await js.request({ unmount: 'changes' });
    await dir.remove();
  });

  it('shows a client its own renames at once while other clients keep looking through the directories renamed', async () => {
    const inst = await instance(native, PLAIN);
    const root = inst.dirs[0]!;
    mkdirSync(join(root, 'd/p'), { recursive: true });
    writeFileSync(join(root, 'd/p/g'), 'g');
    const renamer = IoServiceClient.attach(native.endpoint, inst.name);
    const lookers = [0, 1, 2].map(() => IoServiceClient.attach(native.endpoint, inst.name));
    const ino = (await renamer.stat('/d/p/g')).ino;
    let stop = false;
    let looked = 0;
    // Lookers keep both names' directories remembered, from their own
    // request buffers, interleaved with the renames by the service.
    const looking = lookers.map(async (c) => {
      while (!stop) {
        for (const p of ['/d/p/g', '/d/q/g']) {
          const r = await outcome(c.stat(p));
          // Whatever the moment, the one file or no file: never another.
          if ('value' in r) expect((r.value as { ino: number }).ino).toBe(ino);
          else expect(r).toEqual({ code: 'ENOENT' });
          looked++;
        }
      }
    });
    const [a, b] = ['/d/p', '/d/q'];
    for (let i = 0; i < 150; i++) {
      const [from, to] = i % 2 === 0 ? [a, b] : [b, a];
      if (i % 3 === 0) renamer.renameSync(from, to);
      else await renamer.rename(from, to);
      expect((await renamer.stat(`${to}/g`)).ino, `after rename ${i}`).toBe(ino);
      expect(renamer.lstatSync(`${to}/g`).ino).toBe(ino);
      await expect(renamer.stat(`${from}/g`), `after rename ${i}`).rejects.toMatchObject({ code: 'ENOENT' });
      expect(() => renamer.statSync(`${from}/g`)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    }
    stop = true;
    await Promise.all(looking);
    expect(looked).toBeGreaterThan(150);
    for (const c of [renamer, ...lookers]) await c.unmount();
    await inst.dispose();
  });

  it('answers hostile requests with errors and keeps serving', async () => {
    const inst = await instance(native, PLAIN);
    const raw = FrontDriver.attach(native.endpoint);
    const rand = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(Math.random() * 256)));
    for (let i = 0; i < 3000; i++) {
      const opcode = [Opcode.Stat, Opcode.Lstat, Opcode.Readdir][i % 3]!;
      // Random bytes, and well-formed requests of random paths (with NULs, bad UTF-8, huge lengths).
      const body = i % 2 === 0 ? rand(Math.floor(Math.random() * 40)) : Buffer.concat([Buffer.from([PROTOCOL_VERSION]), (() => { const p = rand(Math.floor(Math.random() * 20)); const h = Buffer.alloc(4); h.writeUInt32LE(Math.random() < 0.1 ? 0xffffffff : p.length + 1 + inst.name.length); return Buffer.concat([h, Buffer.from('/' + inst.name), p]); })()]);
      const r = raw.call(opcode, body);
      expect(r.status <= 0).toBe(true);
    }
    const ok = raw.call(Opcode.Stat, encodeRequest(Opcode.Stat, { path: `/${inst.name}/` }));
    expect(ok.status).toBe(0);
    raw.detach();
    await inst.dispose();
  });

  it('stops answering for an instance unmounted from the service, or unmounted under it', async () => {
    const inst = await instance(native, PLAIN);
    const c = IoServiceClient.attach(native.endpoint, inst.name);
    await c.stat('/');
    const h = await c.open('/f', constants.O_CREAT | constants.O_RDWR, 0o644);
    const before = await native.stats();
    expect(before.nativeInstances).toContain(inst.name);
    await native.request({ unmount: inst.name });
    const after = await native.stats();
    expect(after.nativeInstances).not.toContain(inst.name);
    expect(after.openHandles).toBe(before.openHandles - 1);
    await expect(c.stat('/')).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(c.read(h, Buffer.alloc(1), 0, 1, 0)).rejects.toMatchObject({ code: 'EBADF' });
    await c.unmount();
    await inst.dispose().catch(() => {});
  });

  it('reads of every size arrive whole, those beyond the request buffer too, on both paths', async () => {
    // The native path reads into the client's buffer straight from the
    // kernel, and a read longer than the buffer goes on in fragments after
    // it; the JavaScript path replies as usual. Same bytes, same counts.
    const B = 64 << 10; // the fixture's request buffer (fixtures/service.mjs)
    const MiB = 1 << 20;
    const data = Buffer.alloc(3 * MiB + 100);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 255;
    for (const svc of [native, js]) {
      const inst = await instance(svc, PLAIN);
      writeFileSync(join(inst.dirs[0]!, 'big'), data);
      const c = IoServiceClient.attach(svc.endpoint, inst.name);
      const h = c.openSync('/big', constants.O_RDONLY);
      for (const [length, position] of [[1, 0], [4096, 5], [B - 2, 1], [B - 1, 0], [B, 3], [B + 1, 0], [MiB, 0], [3 * MiB + 7, 9], [200, 3 * MiB], [50, 3 * MiB + 100]] as const) {
        const into = Buffer.alloc(length + 16, 0xee);
        const n = c.readSync(h, into, 8, length, position);
        const want = data.subarray(position, position + length);
        expect(n, `${svc.endpoint}: ${length} at ${position}`).toBe(want.length);
        expect(into.subarray(8, 8 + n).equals(want), `${svc.endpoint}: ${length} at ${position}`).toBe(true);
        expect(into.subarray(0, 8).every((b) => b === 0xee) && into.subarray(8 + n).every((b) => b === 0xee)).toBe(true);
      }
      // At the handle's offset: each read moves it by all it read.
      const seq = c.openSync('/big', constants.O_RDONLY);
      let at = 0;
      for (const length of [B + 5, 10, B - 1, MiB, 3 * MiB]) {
        const into = Buffer.alloc(length);
        const n = c.readSync(seq, into, 0, length, null);
        expect(into.subarray(0, n).equals(data.subarray(at, at + length))).toBe(true);
        at += n;
      }
      expect(at).toBe(data.length);
      c.closeSync(seq);
      c.closeSync(h);
      await inst.dispose();
    }
  });

  it('refuses lookups once the service stops', async () => {
    const svc = await ServiceProcess.start('native-stop');
    const inst = await instance(svc, PLAIN);
    const raw = FrontDriver.attach(svc.endpoint);
    expect(raw.call(Opcode.Stat, encodeRequest(Opcode.Stat, { path: `/${inst.name}` })).status).toBe(0);
    await svc.stop();
    expect(() => raw.call(Opcode.Stat, encodeRequest(Opcode.Stat, { path: `/${inst.name}` }))).toThrow(expect.objectContaining({ code: 'ERR_IPC_SERVICE_GONE' }));
    raw.detach();
    void os;
  });
});
