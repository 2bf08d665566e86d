import { execFile, fork } from 'node:child_process';
import { once } from 'node:events';
import { constants, existsSync, readFileSync, realpathSync as nodeRealpath, statSync, writeFileSync } from 'node:fs';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { EntryType, FsError, type DirEntry, type Libservice } from '@polytropon/libservice';
import { describeConformance, temporaryDirectory } from '@polytropon/libservice/conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instance, ServiceProcess } from '../../ioservice/src/fixtures/service-process.js';
import { createIoLibrary, FD_BASE, type IoLibrary } from './library.js';
import type { IoDirent } from './records.js';
import { IoFileHandle } from './file-handle.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const registerHook = fileURLToPath(new URL('../dist/register.js', import.meta.url));

let svc: ServiceProcess;
beforeAll(async () => {
  svc = await ServiceProcess.start('iolib');
});
afterAll(async () => {
  await svc.stop();
});

let mounts = 0;
/** A fresh instance (a union, or with `lowers` -1 a plain directory) mounted at a fresh mount point, and a library with that mount. */
async function mounted(lowers = 1) {
  const inst = await instance(svc, lowers);
  const point = `/mnt/iolib-test-${process.pid}-${++mounts}`;
  const lib = createIoLibrary({ mounts: { [point]: `${svc.endpoint}/${inst.name}` } });
  return { inst, point, lib, upper: inst.dirs[0]! };
}

const typeOf = (d: IoDirent): DirEntry['type'] =>
  d.isFile() ? EntryType.File : d.isDirectory() ? EntryType.Directory : d.isSymbolicLink() ? EntryType.Symlink : EntryType.Unknown;

/**
 * iolib seen as a libservice, through its callback API (`sync: false`) or
 * its sync API: the conformance suite then checks iolib end to end
 * (iolib -> ipc -> ioservice -> union -> local). Errors name the caller's
 * paths; the facade maps them back to paths within the mount.
 */
function asLibservice(lib: IoLibrary, point: string, sync: boolean): Libservice {
  // A path that is not a string goes to iolib as it is, for its own TypeError.
  const at = (p: string) => (typeof p !== 'string' ? p : p === '/' ? point : point + p);
  const inner = (e: unknown) => {
    if (!(e instanceof FsError)) return e;
    const strip = (p?: string) => (p === undefined ? undefined : p === point ? '/' : p.startsWith(point + '/') ? p.slice(point.length) : p);
    return new FsError(e.code as never, e.syscall, strip(e.path), strip(e.dest));
  };
  const l = lib as unknown as Record<string, (...a: unknown[]) => unknown>;
  const run = async <T>(name: string, ...args: unknown[]): Promise<T> => {
    try {
      if (sync) return l[`${name}Sync`]!(...args) as T;
      return await new Promise<T>((res, rej) => l[name]!(...args, (e: unknown, v: T) => (e ? rej(e) : res(v))));
    } catch (e) {
      throw inner(e);
    }
  };
  return {
    open: (p, flags, mode = 0o666) => run('open', at(p), flags, mode),
    close: (h) => run('close', h),
    read: (h, b, o, n, pos) => run('read', h, b, o, n, pos),
    write: (h, b, o, n, pos) => run('write', h, b, o, n, pos),
    stat: (p) => run('stat', at(p)),
    lstat: (p) => run('lstat', at(p)),
    fstat: (h) => run('fstat', h),
    readdir: async (p) => (await run<IoDirent[]>('readdir', at(p), { withFileTypes: true })).map((d) => ({ name: d.name, type: typeOf(d) })),
    mkdir: (p, mode = 0o777) => run('mkdir', at(p), { mode }),
    rmdir: (p) => run('rmdir', at(p)),
    unlink: (p) => run('unlink', at(p)),
    rename: async (from, to, o) => {
      // node:fs has no noReplace: as the oracle does it.
      if (o?.noReplace === true) {
        await run('lstat', at(from));
        if (await run('lstat', at(to)).then(() => true, () => false)) throw new FsError('EEXIST', 'rename', from, to);
      }
      return run('rename', at(from), at(to));
    },
    link: (a, b) => run('link', at(a), at(b)),
    symlink: (t, p) => run('symlink', t, at(p)),
    readlink: (p) => run('readlink', at(p)),
    truncate: (p, n) => run('truncate', at(p), n),
    ftruncate: (h, n) => run('ftruncate', h, n),
    fsync: (h) => run('fsync', h),
    fdatasync: (h) => run('fdatasync', h),
    chmod: (p, m) => run('chmod', at(p), m),
    chown: (p, u, g) => run('chown', at(p), u, g),
    utimes: (p, a, m) => run('utimes', at(p), a / 1000, m / 1000),
    fchmod: (h, m) => run('fchmod', h, m),
    fchown: (h, u, g) => run('fchown', h, u, g),
    futimes: (h, a, m) => run('futimes', h, a / 1000, m / 1000),
    access: (p, m) => run('access', at(p), m),
    statfs: (p) => run('statfs', at(p)),
    unmount: () => lib.detach(),
  };
}

for (const sync of [false, true]) {
  describeConformance(`iolib ${sync ? 'sync' : 'callback'} API end to end (iolib -> ipc -> ioservice -> union -> local)`, async () => {
    const m = await mounted();
    return { service: asLibservice(m.lib, m.point, sync), dispose: m.inst.dispose };
  }, { nodeFsPaths: true });
}
// The same, on a plain directory the service answers natively.
describeConformance('iolib sync API end to end, natively answered (iolib -> ipc -> the service\'s native end -> openat2)', async () => {
  const m = await mounted(-1);
  return { service: asLibservice(m.lib, m.point, true), dispose: m.inst.dispose };
}, { nodeFsPaths: true });

describe('createIoLibrary', () => {
  it('serves mounted paths from the service and leaves every other path to node:fs', async () => {
    const { lib, point, upper, inst } = await mounted();
    lib.writeFileSync(`${point}/hello.txt`, 'through the service');
    expect(readFileSync(join(upper, 'hello.txt'), 'utf8')).toBe('through the service');
    expect(existsSync(point)).toBe(false); // nothing at the mount point on the host
    expect(lib.readFileSync(`${point}/hello.txt`, 'utf8')).toBe('through the service');
    expect(await lib.promises.readFile(`${point}/hello.txt`, 'utf8')).toBe('through the service');
    const kernel = join(inst.dirs[1]!, '..', 'kernel.txt');
    lib.writeFileSync(kernel, 'on the kernel path');
    expect(readFileSync(kernel, 'utf8')).toBe('on the kernel path');
    expect(lib.existsSync(`${point}/hello.txt`)).toBe(true);
    expect(lib.existsSync(`${point}/nope`)).toBe(false);
    await lib.detach();
    await inst.dispose();
  });

  it('gives mounted files descriptors that never collide with the kernel ones', async () => {
    const { lib, point, inst } = await mounted();
    const fd = lib.openSync(`${point}/f`, 'w');
    expect(fd).toBeGreaterThanOrEqual(FD_BASE);
    const kfd = lib.openSync(join(inst.dirs[1]!, '..', 'k'), 'w');
    expect(kfd).toBeLessThan(FD_BASE);
    lib.writeSync(fd, 'mounted');
    lib.writeSync(kfd, 'kernel');
    lib.closeSync(fd);
    lib.closeSync(kfd);
    expect(() => lib.closeSync(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    await lib.detach();
    await inst.dispose();
  });

  it('promise API: FileHandle, mkdir -p, readdir with types, rm -r, realpath, rename across mounts is EXDEV', async () => {
    const { lib, point, inst } = await mounted();
    const p = lib.promises;
    expect(await p.mkdir(`${point}/a/b/c`, { recursive: true })).toBe(`${point}/a`);
    const fh = (await p.open(`${point}/a/b/c/file`, 'w+')) as IoFileHandle;
    expect(fh).toBeInstanceOf(IoFileHandle);
    await fh.write('handle data');
    const buf = Buffer.alloc(6);
    expect((await fh.read(buf, 0, 6, 7)).bytesRead).toBe(4);
    expect((await fh.stat()).size).toBe(11);
    await fh.chmod('640');
    await fh.utimes(new Date(1_600_000_000_000), 1_700_000_000.5);
    const own = await fh.stat();
    await fh.chown(own.uid, own.gid);
    expect([own.mode & 0o777, own.atimeMs, own.mtimeMs]).toEqual([0o640, 1_600_000_000_000, 1_700_000_000_500]);
    await fh.close();
    expect(fh.fd).toBe(-1);
    await expect(fh.chmod(0o600)).rejects.toMatchObject({ code: 'EBADF', syscall: 'fchmod' });
    await p.symlink('a/b', `${point}/ab`);
    expect(await p.realpath(`${point}/ab/c/file`)).toBe(`${point}/a/b/c/file`);
    const entries = (await p.readdir(`${point}/a/b`, { withFileTypes: true })) as IoDirent[];
    expect(entries.map((e) => [e.name, e.isDirectory()])).toEqual([['c', true]]);
    // recursive, as node:fs gives it for the same tree on the kernel path
    const kernelTree = join(inst.dirs[1]!, '..', 'tree');
    for (const root of [point, kernelTree]) {
      await p.mkdir(`${root}/t/x/y`, { recursive: true });
      await p.writeFile(`${root}/t/x/f`, '');
      await p.writeFile(`${root}/t/g`, '');
    }
    const mountedNames = ((await p.readdir(`${point}/t`, { recursive: true })) as string[]).sort();
    expect(mountedNames).toEqual(((await p.readdir(`${kernelTree}/t`, { recursive: true })) as string[]).sort());
    expect(mountedNames).toEqual(['g', 'x', 'x/f', 'x/y']);
    const deep = (lib.readdirSync(`${point}/t`, { recursive: true, withFileTypes: true }) as IoDirent[]).find((d) => d.name === 'f');
    expect(deep?.parentPath).toBe(`${point}/t/x`);
    await p.rm(`${point}/t`, { recursive: true });
    await expect(p.rename(`${point}/a`, join(inst.dirs[1]!, '..', 'x'))).rejects.toMatchObject({ code: 'EXDEV', syscall: 'rename' });
    await p.rm(`${point}/a`, { recursive: true });
    expect(await p.readdir(point)).toEqual(['ab']);
    await lib.detach();
    await inst.dispose();
  });

  it('takes node:fs argument forms, on mounted and kernel paths alike', async () => {
    const { lib, point, inst } = await mounted();
    const kdir = join(inst.dirs[1]!, '..');
    for (const root of [point, kdir]) {
      // open(path, cb): flags and mode default
      const data = Uint16Array.from([0x4241, 0x4443]); // "ABCD" little-endian: byteLength counts
      lib.writeFileSync(`${root}/forms`, data);
      const fd = await new Promise<number>((res, rej) => lib.open(`${root}/forms`, (e: Error | null, n: number) => (e ? rej(e) : res(n))));
      // read(fd, buffer, options, cb) and read(fd, { buffer, position }, cb): the callback gets the buffer
      const got = await new Promise<[number, Buffer]>((res, rej) =>
        lib.read(fd, Buffer.alloc(4), { position: 1 }, (e: Error | null, n: number, b: Buffer) => (e ? rej(e) : res([n, b]))),
      );
      expect([got[0], got[1].subarray(0, 3).toString()]).toEqual([3, 'BCD']);
      const viaOptions = await new Promise<Buffer>((res, rej) =>
        lib.read(fd, { buffer: Buffer.alloc(2), position: 2 }, (e: Error | null, _n: number, b: Buffer) => (e ? rej(e) : res(b))),
      );
      expect(viaOptions.toString()).toBe('CD');
      const b = Buffer.alloc(4);
      expect(lib.readSync(fd, b, { position: 0 })).toBe(4);
      expect(b.toString()).toBe('ABCD');
      lib.close(fd); // no callback: allowed, as node:fs
      // a DataView writes its bytes
      const src = Buffer.from('dataview');
      lib.writeFileSync(`${root}/view`, new DataView(src.buffer, src.byteOffset, src.byteLength));
      expect(lib.readFileSync(`${root}/view`, 'utf8')).toBe('dataview');
      expect(lib.statSync(`${root}/missing`, { throwIfNoEntry: false })).toBeUndefined();
      expect(lib.lstatSync(`${root}/missing`, { throwIfNoEntry: false })).toBeUndefined();
      expect([lib.existsSync(`${root}/missing`), lib.existsSync(`${root}/view`), lib.existsSync(`${root}/view/under-a-file`)]).toEqual([false, true, false]);
      // Misses that are swallowed cost no stack trace; an error that reaches
      // the caller still has its stack, and the switch is back as it was.
      // ENOTDIR with throwIfNoEntry: false is thrown or not as this Node's
      // own node:fs does (Node 24's statSync answers undefined).
      const under = `${root}/view/under-a-file`;
      const node = (f: typeof nodeFs.statSync) => {
        try {
          return f(`${process.execPath}/under-a-file`, { throwIfNoEntry: false });
        } catch (e) {
          return (e as NodeJS.ErrnoException).code;
        }
      };
      for (const [op, own] of [['statSync', nodeFs.statSync], ['lstatSync', nodeFs.lstatSync]] as const) {
        let thrown: unknown;
        let got: unknown;
        try {
          got = lib[op](under, { throwIfNoEntry: false });
        } catch (e) {
          thrown = e;
        }
        expect(thrown === undefined ? got : (thrown as NodeJS.ErrnoException).code, op).toEqual(node(own));
        if (thrown !== undefined) {
          expect(thrown).toMatchObject({ code: 'ENOTDIR', syscall: op.replace('Sync', ''), path: under });
          expect((thrown as Error).stack!.split('\n').length).toBeGreaterThan(1);
        }
      }
      expect(FsError.stackTraces).toBe(true);
      expect(() => lib.mkdirSync(`${root}/view`, { recursive: true })).toThrow(expect.objectContaining({ code: 'EEXIST' }));
      const fh = await lib.promises.open(`${root}/view`, 'r');
      expect(await lib.promises.readFile(fh as never, 'utf8')).toBe('dataview');
      await fh.close();
    }
    // The kernel path keeps node:fs's options: a Buffer from readlink, the realpath cache.
    lib.symlinkSync('view', join(kdir, 'vlink'));
    expect(Buffer.isBuffer(lib.readlinkSync(join(kdir, 'vlink'), 'buffer'))).toBe(true);
    expect(lib.realpathSync(join(kdir, 'vlink'), { encoding: 'utf8' })).toBe(nodeRealpath(join(kdir, 'view')));
    await lib.detach();
    await inst.dispose();
  });

  it('copyFile within a mount, between mounts and to and from the host, as node:fs copies', async () => {
    const a = await mounted();
    const b = await mounted();
    const host = join(a.inst.dirs[1]!, '..', 'host-copy');
    const { lib } = a;
    const both = createIoLibrary({ mounts: { [a.point]: `${svc.endpoint}/${a.inst.name}`, [b.point]: `${svc.endpoint}/${b.inst.name}` } });
    lib.writeFileSync(`${a.point}/src`, 'some bytes', { mode: 0o640 });
    lib.chmodSync(`${a.point}/src`, 0o640);
    lib.copyFileSync(`${a.point}/src`, `${a.point}/same`);
    expect(lib.readFileSync(`${a.point}/same`, 'utf8')).toBe('some bytes');
    expect(lib.statSync(`${a.point}/same`)!.mode & 0o777).toBe(0o640);
    await both.promises.copyFile(`${a.point}/src`, `${b.point}/other`);
    expect(both.readFileSync(`${b.point}/other`, 'utf8')).toBe('some bytes');
    await new Promise<void>((res, rej) => lib.copyFile(`${a.point}/src`, host, (e: unknown) => (e ? rej(e) : res())));
    expect(readFileSync(host, 'utf8')).toBe('some bytes');
    expect(statSync(host).mode & 0o777).toBe(0o640);
    writeFileSync(host, 'from the host');
    lib.copyFileSync(host, `${a.point}/in`);
    expect(lib.readFileSync(`${a.point}/in`, 'utf8')).toBe('from the host');
    // COPYFILE_EXCL, a missing source, a forced clone: node:fs's errors, naming both paths.
    expect(() => lib.copyFileSync(`${a.point}/src`, `${a.point}/same`, constants.COPYFILE_EXCL)).toThrow(
      expect.objectContaining({ code: 'EEXIST', syscall: 'copyfile', path: `${a.point}/src`, dest: `${a.point}/same` }),
    );
    await expect(lib.promises.copyFile(`${a.point}/missing`, `${a.point}/x`)).rejects.toMatchObject({ code: 'ENOENT', syscall: 'copyfile', path: `${a.point}/missing`, dest: `${a.point}/x` });
    expect(() => lib.copyFileSync(`${a.point}/src`, `${a.point}/y`, constants.COPYFILE_FICLONE_FORCE)).toThrow(expect.objectContaining({ code: 'ENOTSUP' }));
    expect(lib.existsSync(`${a.point}/x`)).toBe(false);
    // Kernel to kernel stays node:fs's own.
    lib.copyFileSync(host, `${host}-2`);
    expect(readFileSync(`${host}-2`, 'utf8')).toBe('from the host');
    await Promise.all([lib.detach(), both.detach(), b.lib.detach()]);
    await Promise.all([a.inst.dispose(), b.inst.dispose()]);
  });

  it('mkdtemp makes a fresh 0700 directory under the prefix', async () => {
    const { lib, point, inst } = await mounted();
    const made = new Set<string>();
    for (let i = 0; i < 20; i++) made.add(lib.mkdtempSync(`${point}/tmp-`) as string);
    made.add((await lib.promises.mkdtemp(`${point}/tmp-`)) as string);
    // In the mount's root; the mount point itself as a prefix names a sibling, node:fs's.
    made.add(lib.mkdtempSync(`${point}/`) as string);
    expect(Buffer.isBuffer(lib.mkdtempSync(`${point}/b-`, 'buffer' as never))).toBe(true);
    expect(made.size).toBe(22);
    for (const d of made) {
      expect(d).toMatch(new RegExp(`^${point}/(tmp-)?[A-Za-z0-9]{6}$`));
      expect(lib.statSync(d)!.isDirectory()).toBe(true);
      expect(lib.statSync(d)!.mode & 0o777).toBe(0o700);
    }
    expect(() => lib.mkdtempSync(`${point}/missing/tmp-`)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'mkdtemp' }));
    await lib.detach();
    await inst.dispose();
  });

  it('readv, writev and opendir on a mount answer as node:fs does on a directory of the host', async () => {
    const { lib, point, inst } = await mounted();
    const host = await temporaryDirectory('iolib-vec-');
    // The same calls on both; results compared.
    const run = async (fs: typeof nodeFs | typeof lib, root: string) => {
      const out: unknown[] = [];
      const fd = fs.openSync(`${root}/v`, 'w+');
      out.push(fs.writevSync(fd, [Buffer.from('hello '), new Uint8Array(Buffer.from('vector')), Buffer.alloc(0)]));
      out.push(fs.writevSync(fd, [Buffer.from('V')], 6));
      const [a, b, c] = [Buffer.alloc(3), Buffer.alloc(4), Buffer.alloc(10)];
      out.push(fs.readvSync(fd, [a, b, c], 1), a.toString(), b.toString(), c.toString('latin1'));
      out.push(await new Promise((res, rej) => fs.readv(fd, [Buffer.alloc(5)], 0, (e: Error | null, n: number, bufs: Buffer[]) => (e ? rej(e) : res([n, bufs[0]!.toString()])))));
      out.push(await new Promise((res, rej) => fs.writev(fd, [Buffer.from('!')], null, (e: Error | null, n: number) => (e ? rej(e) : res(n)))));
      fs.closeSync(fd);
      out.push(fs.readFileSync(`${root}/v`, 'utf8'));
      fs.mkdirSync(`${root}/d/e`, { recursive: true });
      fs.writeFileSync(`${root}/d/f`, '');
      const dir = fs.opendirSync(`${root}/d`);
      const names: string[] = [];
      for (let e = dir.readSync(); e !== null; e = dir.readSync()) names.push(`${e.name}:${e.isDirectory()}`);
      dir.closeSync();
      out.push(names.sort());
      // (read() of a closed Dir throws on Node 20 and rejects on later ones: not compared.)
      for (const f of [() => dir.readSync(), () => dir.closeSync()]) {
        try {
          f();
          out.push('no error');
        } catch (e) {
          out.push((e as { code: string }).code);
        }
      }
      const it: string[] = [];
      for await (const e of await fs.promises.opendir(`${root}/d`, { recursive: true })) it.push(e.name);
      out.push(it.sort());
      const cb = await new Promise<nodeFs.Dir>((res, rej) => fs.opendir(`${root}/d`, (e: Error | null, d: nodeFs.Dir) => (e ? rej(e) : res(d))));
      out.push((await cb.read())?.name !== undefined);
      await cb.close();
      out.push(await cb.close().catch((e: { code: string }) => e.code));
      for (const bad of [`${root}/missing`, `${root}/v`]) {
        try {
          fs.opendirSync(bad);
        } catch (e) {
          out.push([(e as { code: string }).code, (e as { syscall: string }).syscall]);
        }
      }
      return out;
    };
    const got = await run(lib, point);
    const want = await run(nodeFs, host.path);
    expect(got).toEqual(want);
    expect(want).toContain('hello Vector!');
    await host.remove();
    await lib.detach();
    await inst.dispose();
  });

  it('cp copies trees on a mount, to and from the host, as node:fs copies on the host', async () => {
    const { lib, point, inst } = await mounted();
    const host = await temporaryDirectory('iolib-cp-');
    /** A tree, copied every way; what each copy made (paths relative, links with the root taken out), and the errors. */
    const run = async (fs: typeof nodeFs | typeof lib, root: string, other: string) => {
      const out: unknown[] = [];
      fs.mkdirSync(`${root}/src/sub/deeper`, { recursive: true });
      fs.writeFileSync(`${root}/src/a`, 'A');
      fs.writeFileSync(`${root}/src/sub/b`, 'B');
      fs.writeFileSync(`${root}/src/sub/deeper/c`, 'C');
      fs.chmodSync(`${root}/src/sub/b`, 0o640);
      const tree = (dir: string): unknown[] =>
        fs.readdirSync(dir, { recursive: true }).map(String).sort().map((rel: string) => {
          const p = `${dir}/${rel}`;
          const st = fs.lstatSync(p)!;
          // A link: what it leads to (its text is in each side's own namespace).
          const what = st.isSymbolicLink() ? `-> ${fs.readFileSync(p, 'utf8')}` : st.isDirectory() ? 'dir' : fs.readFileSync(p, 'utf8');
          return [rel, st.mode & 0o777, what];
        });
      const code = (f: () => unknown) => {
        try {
          f();
          return 'ok';
        } catch (e) {
          return (e as { code: string }).code;
        }
      };
      fs.cpSync(`${root}/src`, `${root}/copy/nested`, { recursive: true });
      out.push(tree(`${root}/copy`));
      fs.writeFileSync(`${root}/src/a`, 'A2');
      out.push(code(() => fs.cpSync(`${root}/src`, `${root}/copy/nested`, { recursive: true, force: false, errorOnExist: true })));
      fs.cpSync(`${root}/src`, `${root}/copy/nested`, { recursive: true, force: false });
      out.push(fs.readFileSync(`${root}/copy/nested/a`, 'utf8'), 'kept: force false');
      fs.cpSync(`${root}/src`, `${root}/copy/nested`, { recursive: true });
      out.push(fs.readFileSync(`${root}/copy/nested/a`, 'utf8'), 'replaced: force');
      // (A link copied onto an equal link is refused by Node 20's cp and done by later ones: not here.)
      fs.symlinkSync('sub/b', `${root}/src/link`);
      fs.cpSync(`${root}/src`, `${root}/withLink`, { recursive: true });
      out.push(tree(`${root}/withLink`));
      out.push(code(() => fs.cpSync(`${root}/src`, `${root}/nope`)));
      out.push(code(() => fs.cpSync(`${root}/src`, `${root}/src/sub/inside`, { recursive: true })));
      out.push(code(() => fs.cpSync(`${root}/src/a`, `${root}/src/a`)));
      out.push(code(() => fs.cpSync(`${root}/src/a`, `${root}/src/sub`)));
      out.push(code(() => fs.cpSync(`${root}/src`, `${root}/src/a`, { recursive: true })));
      fs.cpSync(`${root}/src`, `${root}/filtered`, { recursive: true, filter: (s: string) => !s.endsWith('deeper') });
      out.push(tree(`${root}/filtered`));
      await fs.promises.cp(`${root}/src`, `${root}/viaPromise`, { recursive: true, filter: async (s: string) => !s.endsWith('/a') });
      out.push(tree(`${root}/viaPromise`));
      await new Promise<void>((res, rej) => fs.cp(`${root}/src/a`, `${root}/viaCallback`, (e: Error | null) => (e ? rej(e) : res())));
      out.push(fs.readFileSync(`${root}/viaCallback`, 'utf8'));
      // Across: this side to the other and back.
      fs.cpSync(`${root}/src/sub`, `${other}/across`, { recursive: true });
      fs.cpSync(`${other}/across`, `${root}/back`, { recursive: true });
      out.push(tree(`${root}/back`));
      return out;
    };
    const mountOther = `${point}/other`;
    const hostOther = join(host.path, 'other');
    const got = await run(lib, point, join(host.path, 'from-mount'));
    const want = await run(nodeFs, join(host.path, 'ref'), hostOther);
    expect(got).toEqual(want);
    expect(want).toContainEqual(expect.arrayContaining([['link', 0o777, '-> B']]));
    // On the mount, the copied link names its target within the instance.
    expect(lib.readlinkSync(`${point}/withLink/link`)).toBe('/src/sub/b');
    // A copy into itself through another path is refused before anything is copied.
    const alias = `${point}-alias`;
    const lib2 = createIoLibrary({ mounts: { [point]: `${svc.endpoint}/${inst.name}`, [alias]: `${svc.endpoint}/${inst.name}` } });
    expect(() => lib2.cpSync(`${point}/src`, `${alias}/src/sub/inner`, { recursive: true })).toThrow(expect.objectContaining({ code: 'ERR_FS_CP_EINVAL' }));
    expect(lib2.existsSync(`${point}/src/sub/inner`)).toBe(false);
    await lib2.detach();
    // Errors of the steps keep their paths.
    expect(() => lib.cpSync(`${point}/missing`, `${point}/x`)).toThrow(expect.objectContaining({ code: 'ENOENT', path: `${point}/missing` }));
    // Host to mount, by a library that knows the mount.
    lib.cpSync(join(host.path, 'ref', 'src', 'sub'), mountOther, { recursive: true });
    expect(lib.readFileSync(`${mountOther}/deeper/c`, 'utf8')).toBe('C');
    // A directory made by the copy gets its source's mode, as node:fs's cp
    // does (Node 22+'s cpSync, in C++, leaves the default there).
    lib.chmodSync(`${point}/src/sub`, 0o750);
    lib.cpSync(`${point}/src/sub`, `${point}/modes`, { recursive: true });
    expect(lib.statSync(`${point}/modes`)!.mode & 0o777).toBe(0o750);
    await host.remove();
    await lib.detach();
    await inst.dispose();
  });

  it('errors are node:fs errors with the caller paths', async () => {
    const { lib, point, inst } = await mounted();
    let err: NodeJS.ErrnoException | undefined;
    try {
      lib.statSync(`${point}/missing`);
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'stat', path: `${point}/missing` });
    expect(err?.message).toBe(`ENOENT: no such file or directory, stat '${point}/missing'`);
    await lib.detach();
    await inst.dispose();
  });

  it('streams read and write mounted files', async () => {
    const { lib, point, inst } = await mounted();
    const out = lib.createWriteStream(`${point}/stream.txt`);
    for (let i = 0; i < 1000; i++) out.write(`line ${i}\n`);
    out.end();
    await once(out, 'finish');
    let text = '';
    for await (const chunk of lib.createReadStream(`${point}/stream.txt`, { encoding: 'utf8', highWaterMark: 1024 })) text += chunk;
    expect(text.split('\n').length).toBe(1001);
    expect(text.startsWith('line 0\nline 1\n')).toBe(true);
    // FileHandle streams: the stream's close is the handle's.
    const before = (await svc.stats()).openHandles;
    const w = (await lib.promises.open(`${point}/fh.txt`, 'w')) as IoFileHandle;
    const ws = w.createWriteStream({ encoding: 'utf8' });
    for (let i = 0; i < 500; i++) ws.write(`row ${i}\r\n`);
    ws.end();
    await once(ws, 'close');
    expect(w.fd).toBe(-1);
    const r = (await lib.promises.open(`${point}/fh.txt`, 'r')) as IoFileHandle;
    const rows: string[] = [];
    for await (const line of r.readLines()) rows.push(line);
    expect(rows).toEqual([...Array(500).keys()].map((i) => `row ${i}`));
    expect(r.fd).toBe(-1);
    const part = (await lib.promises.open(`${point}/fh.txt`, 'r')) as IoFileHandle;
    let middle = '';
    for await (const chunk of part.createReadStream({ encoding: 'utf8', start: 7, end: 13, autoClose: false })) middle += chunk;
    expect(middle).toBe('row 1\r\n');
    expect(part.fd).not.toBe(-1);
    await part.close();
    expect(() => part.createReadStream()).toThrow(expect.objectContaining({ code: 'EBADF' }));
    const end = Date.now() + 5000;
    while ((await svc.stats()).openHandles !== before && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
    expect((await svc.stats()).openHandles).toBe(before);
    await lib.detach();
    await inst.dispose();
  });

  it('watch, watchFile and promises.watch poll mounted paths, and see changes made behind the service', async () => {
    const { lib, point, upper, inst } = await mounted(-1);
    const until = async (what: () => boolean) => {
      const end = Date.now() + 5000;
      while (!what() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      expect(what()).toBe(true);
    };
    lib.mkdirSync(`${point}/w/sub`, { recursive: true });
    const events: string[] = [];
    const w = lib.watch(`${point}/w`, { recursive: true, interval: 20 } as never, (event: string, name: string | Buffer) => events.push(`${event} ${String(name)}`));
    await new Promise((r) => setTimeout(r, 60));
    lib.writeFileSync(`${point}/w/f`, 'one');
    await until(() => events.includes('rename f'));
    // Behind the service: straight into the served directory on the host.
    writeFileSync(join(upper, 'w', 'sub', 'g'), 'from the host');
    await until(() => events.includes('rename sub/g'));
    lib.writeFileSync(`${point}/w/f`, 'two, longer');
    await until(() => events.includes('change f'));
    lib.unlinkSync(`${point}/w/f`);
    await until(() => events.filter((e) => e === 'rename f').length === 2);
    const closed = once(w, 'close');
    w.close();
    await closed;
    expect(() => lib.watch(`${point}/missing`)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'watch' }));
    const named = lib.watch(`${point}/w`, { encoding: 'buffer', interval: 20 } as never);
    const got = once(named, 'change');
    await new Promise((r) => setTimeout(r, 60));
    lib.writeFileSync(`${point}/w/b`, '');
    expect((await got)[1]).toEqual(Buffer.from('b'));
    named.close();

    // watchFile: (current, previous), all zeroes for a missing file; unwatchFile stops it.
    const seen: [number, number][] = [];
    const listener = (curr: nodeFs.Stats, prev: nodeFs.Stats) => seen.push([curr.size, prev.size]);
    lib.watchFile(`${point}/w/h`, { interval: 20 }, listener);
    await new Promise((r) => setTimeout(r, 60));
    lib.writeFileSync(`${point}/w/h`, 'abc');
    await until(() => seen.length === 1);
    expect(seen[0]).toEqual([3, 0]);
    lib.unwatchFile(`${point}/w/h`, listener);
    lib.writeFileSync(`${point}/w/h`, 'abcdef');
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.length).toBe(1);

    // promises.watch: an async iterator that ends with an AbortError.
    const ac = new AbortController();
    const it = lib.promises.watch(`${point}/w`, { signal: ac.signal, interval: 20 } as never) as AsyncIterable<{ eventType: string; filename: string }>;
    setTimeout(() => lib.writeFileSync(`${point}/w/p`, ''), 80);
    let first: { eventType: string; filename: string } | undefined;
    await expect(
      (async () => {
        for await (const e of it) {
          first ??= e;
          ac.abort();
        }
      })(),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(first).toEqual({ eventType: 'rename', filename: 'p' });
    await lib.detach();
    await inst.dispose();
  });

  // A union is served in JS; a plain directory by the service's native end.
  it.each([['a union', 1], ['a plain local directory', -1]] as const)('processes and worker threads see each other at once; appends from two processes interleave without loss, on %s', async (_kind, lowers) => {
    const { lib, point, inst } = await mounted(lowers);
    const mountsEnv = JSON.stringify({ [point]: `${svc.endpoint}/${inst.name}` });
    const writers = [0, 1].map((n) => fork(fixture('appender.mjs'), [mountsEnv, `${point}/log`, String(n), '300'], { stdio: 'inherit' }));
    await Promise.all(writers.map((w) => once(w, 'exit')));
    const lines = (lib.readFileSync(`${point}/log`, 'utf8') as string).trim().split('\n');
    expect(lines.length).toBe(600);
    for (const n of [0, 1]) expect(lines.filter((l) => l.startsWith(`${n}:`)).map((l) => Number(l.split(':')[1]))).toEqual([...Array(300).keys()]);
    // A worker thread writes; this thread reads it the moment the worker says so.
    const w = new Worker(fixture('worker-writer.mjs'), { workerData: { mounts: mountsEnv, path: `${point}/from-worker` } });
    await once(w, 'message');
    expect(lib.readFileSync(`${point}/from-worker`, 'utf8')).toBe('written by a worker');
    await w.terminate();
    await lib.detach();
    await inst.dispose();
  });

  it.each([['a union', 1], ['a plain local directory', -1]] as const)('an application killed mid-work loses nothing it fsynced, and leaks no handle in the service, on %s', async (_kind, lowers) => {
    const { lib, point, upper, inst } = await mounted(lowers);
    const before = (await svc.stats()).openHandles;
    const mountsEnv = JSON.stringify({ [point]: `${svc.endpoint}/${inst.name}` });
    const app = fork(fixture('fsync-then-hang.mjs'), [mountsEnv, `${point}/record`], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    await once(app.stdout!, 'data');
    expect((await svc.stats()).openHandles).toBe(before + 11);
    app.kill('SIGKILL');
    await once(app, 'exit');
    expect(readFileSync(join(upper, 'record'), 'utf8')).toBe('acknowledged and fsynced');
    const end = Date.now() + 5000;
    while ((await svc.stats()).openHandles !== before && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect((await svc.stats()).openHandles).toBe(before);
    await lib.detach();
    await inst.dispose();
  });

  it('node --import @polytropon/iolib/register routes an unmodified application', async () => {
    const { point, upper, inst, lib } = await mounted();
    const env = { ...process.env, POLYTROPON_MOUNTS: `${point}=${svc.endpoint}/${inst.name}` };
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', registerHook, fixture('plain-app.mjs'), point], { env });
    expect(stdout.trim()).toBe('plain fs, promises and streams: ok');
    expect(readFileSync(join(upper, 'app', 'data.txt'), 'utf8')).toBe('written by fs.writeFileSync+appended');
    expect(existsSync(point)).toBe(false);
    await lib.detach();
    await inst.dispose();
  });
});

describe('iolib when its service goes', () => {
  it('calls fail promptly with a clear error, and work again once a service is back', async () => {
    const own = await ServiceProcess.start('iolib-restart');
    const inst = await instance(own);
    const point = `/mnt/iolib-restart-${process.pid}`;
    const lib = createIoLibrary({ mounts: { [point]: `${own.endpoint}/${inst.name}` } });
    lib.writeFileSync(`${point}/f`, 'before');
    const fd = lib.openSync(`${point}/f`, 'r');
    own.child.kill('SIGKILL');
    await once(own.child, 'exit');
    const t0 = Date.now();
    expect(() => lib.statSync(`${point}/f`)).toThrow(expect.objectContaining({ code: 'ERR_IPC_SERVICE_GONE' }));
    expect(Date.now() - t0).toBeLessThan(3000);
    // A new service on the same endpoint, serving the same directories.
    const again = await ServiceProcess.start('iolib-restart');
    await again.request({ mount: inst.name, dirs: inst.dirs, union: true });
    expect(lib.readFileSync(`${point}/f`, 'utf8')).toBe('before');
    // The descriptor opened through the dead service is gone with it.
    expect(() => lib.readSync(fd, Buffer.alloc(1))).toThrow(expect.objectContaining({ code: 'EBADF' }));
    await lib.detach();
    await again.stop();
  });
});
