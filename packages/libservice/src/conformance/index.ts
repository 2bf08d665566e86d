// The libservice conformance suite, for vitest:
//
//   import { describeConformance } from '@polytropon/libservice/conformance';
//   describeConformance('my service', async () => ({ service: await MyService.create(...) }));
//
// Every test gets a fresh, empty service from the factory. The suite checks
// each operation's success and error semantics against what node:fs does on
// Linux, the edge cases real programs hit, and randomized sequences compared
// step by step with node:fs on a temporary directory.
import { mkdtemp, rm } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Libservice, SyncLibservice } from '../contract.js';
import { EntryType } from '../contract.js';
import { parseOpenFlags } from '../flags.js';
import { assertMatchesOracle } from './oracle.js';
import { nodeFsLibservice } from './node-fs.js';

export { nodeFsLibservice } from './node-fs.js';
export { assertMatchesOracle, runStep, snapshot, stepArbitrary } from './oracle.js';
export type { OraclePair, Step } from './oracle.js';

/** A service to test, and what to do after the test (remove its directories...). */
export interface ConformanceTarget {
  service: Libservice;
  dispose?(): Promise<void>;
}

export interface ConformanceOptions {
  /** Randomized sequences compared with node:fs (default 60). */
  runs?: number;
  /** Per-test timeout in milliseconds (default vitest's configured one). */
  timeout?: number;
  /**
   * True for node:fs itself and for libraries shaped like it over a
   * directory (the suite's own run against node:fs, iolib on a mount):
   * skips what only a service rooted at '/' does (the root's '..' and
   * absolute symlinks stay inside; relative paths and negative positions
   * are refused).
   */
  nodeFsPaths?: boolean;
}

/** A fresh temporary directory and its removal. */
export async function temporaryDirectory(prefix = 'libservice-'): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** Writes a whole file through a libservice (open with node:fs-style `flags`, write everything, close). */
export async function writeFile(s: Libservice, path: string, data: string | Uint8Array, flags = 'w'): Promise<void> {
  const bytes = typeof data === 'string' ? enc(data) : data;
  const h = await s.open(path, parseOpenFlags(flags), 0o644);
  try {
    let done = 0;
    while (done < bytes.length) done += await s.write(h, bytes, done, bytes.length - done, null);
  } finally {
    await s.close(h);
  }
}

/** Reads a whole file through a libservice, as UTF-8. */
export async function readFile(s: Libservice, path: string): Promise<string> {
  const h = await s.open(path, parseOpenFlags('r'));
  try {
    const chunks: Uint8Array[] = [];
    for (;;) {
      const buf = new Uint8Array(65536);
      const n = await s.read(h, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
    }
    return dec(Buffer.concat(chunks));
  } finally {
    await s.close(h);
  }
}

/** Expects `p` to reject with a node:fs-shaped error of `code` (and, when given, `syscall` and `path`). */
export async function expectCode(p: Promise<unknown>, code: string, syscall?: string, path?: string): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(Error);
  const e = err as NodeJS.ErrnoException;
  expect(e.code).toBe(code);
  if (/^E[A-Z]+$/.test(code)) {
    expect(e.errno).toBe(-(osConstants.errno as Record<string, number>)[code]!);
    if (syscall !== undefined) expect(e.syscall).toBe(syscall);
    if (path !== undefined) expect(e.path).toBe(path);
    expect(e.message.startsWith(`${code}: `)).toBe(true);
  }
}


/**
 * A libservice whose operations are the `...Sync` twins of `s` (its unmount
 * stays async), so that the suite checks the twins too.
 */
export function syncTwins(s: SyncLibservice & Pick<Libservice, 'unmount'>): Libservice {
  const ops = ['open', 'close', 'read', 'write', 'stat', 'lstat', 'fstat', 'readdir', 'mkdir', 'rmdir', 'unlink', 'rename', 'link', 'symlink', 'readlink', 'truncate', 'ftruncate', 'fsync', 'fdatasync', 'chmod', 'chown', 'utimes', 'fchmod', 'fchown', 'futimes', 'access', 'statfs'] as const;
  const twins: Record<string, unknown> = { unmount: () => s.unmount() };
  for (const op of ops) {
    const twin = (s as unknown as Record<string, (...a: unknown[]) => unknown>)[`${op}Sync`]!.bind(s);
    twins[op] = async (...args: unknown[]) => twin(...args);
  }
  return twins as unknown as Libservice;
}

const names = async (s: Libservice, p: string) => (await s.readdir(p)).map((e) => e.name).sort();

/** Declares the whole suite for the services `create` makes. */
export function describeConformance(name: string, create: () => Promise<ConformanceTarget>, options: ConformanceOptions = {}): void {
  const rooted = options.nodeFsPaths !== true; // the contract's own rules apply
  const test = (title: string, body: (s: Libservice) => Promise<void>, timeout = options.timeout) =>
    it(
      title,
      async () => {
        const t = await create();
        try {
          await body(t.service);
        } finally {
          await t.service.unmount();
          await t.dispose?.();
        }
      },
      timeout,
    );

  describe(`libservice conformance: ${name}`, () => {
    describe('files', () => {
      test('create, write, read back, stat', async (s) => {
        await writeFile(s, '/f', 'hello world');
        expect(await readFile(s, '/f')).toBe('hello world');
        const st = await s.stat('/f');
        expect(st.mode & constants.S_IFMT).toBe(constants.S_IFREG);
        expect(st.size).toBe(11);
        expect(st.nlink).toBe(1);
      });
      test('open of a missing file fails with ENOENT shaped like node:fs', async (s) => {
        await expectCode(s.open('/missing', parseOpenFlags('r')), 'ENOENT', 'open', '/missing');
        await expectCode(s.open('/no/such/dir/f', parseOpenFlags('w')), 'ENOENT', 'open', '/no/such/dir/f');
      });
      test('O_EXCL refuses an existing file and creates a new one', async (s) => {
        await writeFile(s, '/f', 'x');
        await expectCode(s.open('/f', parseOpenFlags('wx')), 'EEXIST', 'open', '/f');
        await writeFile(s, '/g', 'y', 'wx');
        expect(await readFile(s, '/g')).toBe('y');
      });
      test('a directory cannot be opened for writing, and a file is no directory', async (s) => {
        await s.mkdir('/d');
        await writeFile(s, '/f', 'x');
        await expectCode(s.open('/d', parseOpenFlags('r+')), 'EISDIR', 'open', '/d');
        await expectCode(s.open('/f/x', parseOpenFlags('r')), 'ENOTDIR', 'open', '/f/x');
        await expectCode(s.stat('/f/x'), 'ENOTDIR', 'stat', '/f/x');
      });
      test('reads at a position leave the handle position alone; null position advances it', async (s) => {
        await writeFile(s, '/f', '0123456789');
        const h = await s.open('/f', parseOpenFlags('r'));
        const b = new Uint8Array(4);
        expect(await s.read(h, b, 0, 4, 6)).toBe(4);
        expect(dec(b)).toBe('6789');
        expect(await s.read(h, b, 0, 4, null)).toBe(4);
        expect(dec(b)).toBe('0123');
        expect(await s.read(h, b, 1, 2, null)).toBe(2);
        expect(dec(b)).toBe('0453');
        expect(await s.read(h, b, 0, 4, 10)).toBe(0);
        expect(await s.read(h, b, 0, 4, 1000)).toBe(0);
        await s.close(h);
      });
      test('sparse writes read back zeros in the hole', async (s) => {
        const h = await s.open('/f', parseOpenFlags('w+'));
        await s.write(h, enc('end'), 0, 3, 1 << 20);
        const b = new Uint8Array(8).fill(7);
        expect(await s.read(h, b, 0, 8, 4096)).toBe(8);
        expect([...b]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
        expect(await s.read(h, b, 0, 8, 1 << 20)).toBe(3);
        expect(dec(b.subarray(0, 3))).toBe('end');
        await s.close(h);
      });
      test('O_APPEND writes at the end, whatever the position and across handles', async (s) => {
        await writeFile(s, '/log', 'a');
        const h1 = await s.open('/log', parseOpenFlags('a'));
        const h2 = await s.open('/log', parseOpenFlags('a'));
        await s.write(h1, enc('b'), 0, 1, null);
        await s.write(h2, enc('c'), 0, 1, null);
        await s.write(h1, enc('d'), 0, 1, 0); // Linux appends even with a position
        await s.close(h1);
        await s.close(h2);
        expect(await readFile(s, '/log')).toBe('abcd');
      });
      test('O_TRUNC empties an existing file', async (s) => {
        await writeFile(s, '/f', 'long content');
        await writeFile(s, '/f', 'x');
        expect(await readFile(s, '/f')).toBe('x');
      });
      test('truncate extends with zeros and shrinks; ftruncate too', async (s) => {
        await writeFile(s, '/f', 'abc');
        await s.truncate('/f', 6);
        expect(await readFile(s, '/f')).toBe('abc\0\0\0');
        await s.truncate('/f', 1);
        expect(await readFile(s, '/f')).toBe('a');
        const h = await s.open('/f', parseOpenFlags('r+'));
        await s.ftruncate(h, 0);
        expect((await s.fstat(h)).size).toBe(0);
        await s.close(h);
        await s.mkdir('/d');
        await expectCode(s.truncate('/d', 0), 'EISDIR');
        await expectCode(s.truncate('/missing', 0), 'ENOENT');
      });
      test('an unlinked file stays readable and writable through an open handle', async (s) => {
        await writeFile(s, '/f', 'still here');
        const h = await s.open('/f', parseOpenFlags('r+'));
        await s.unlink('/f');
        await expectCode(s.stat('/f'), 'ENOENT', 'stat', '/f');
        const b = new Uint8Array(10);
        expect(await s.read(h, b, 0, 10, 0)).toBe(10);
        expect(dec(b)).toBe('still here');
        await s.write(h, enc('S'), 0, 1, 0);
        expect(await s.read(h, b, 0, 1, 0)).toBe(1);
        expect(dec(b.subarray(0, 1))).toBe('S');
        expect((await s.fstat(h)).nlink).toBe(0);
        await s.close(h);
      });
      test('closed and unknown handles fail with EBADF', async (s) => {
        await writeFile(s, '/f', 'x');
        const h = await s.open('/f', parseOpenFlags('r'));
        await s.close(h);
        await expectCode(s.close(h), 'EBADF', 'close');
        await expectCode(s.read(h, new Uint8Array(1), 0, 1, null), 'EBADF', 'read');
        await expectCode(s.fstat(987654), 'EBADF', 'fstat');
        await expectCode(s.fsync(987654), 'EBADF', 'fsync');
      });
      test('a read-only handle cannot write, a write-only one cannot read', async (s) => {
        await writeFile(s, '/f', 'x');
        const r = await s.open('/f', parseOpenFlags('r'));
        await expectCode(s.write(r, enc('y'), 0, 1, null), 'EBADF', 'write');
        await s.close(r);
        const w = await s.open('/f', parseOpenFlags('a'));
        await expectCode(s.read(w, new Uint8Array(1), 0, 1, 0), 'EBADF', 'read');
        await s.close(w);
      });
      test('fsync and fdatasync succeed on an open file', async (s) => {
        const h = await s.open('/f', parseOpenFlags('w'));
        await s.write(h, enc('durable'), 0, 7, null);
        await s.fsync(h);
        await s.fdatasync(h);
        await s.close(h);
        expect(await readFile(s, '/f')).toBe('durable');
      });
      test('bad arguments are TypeErrors and RangeErrors with node:fs codes, not POSIX errors', async (s) => {
        if (rooted) await expect(s.stat('relative')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
        await expect(s.stat('/a\0b')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
        await expect(s.stat(42 as unknown as string)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
        await writeFile(s, '/f', 'x');
        const h = await s.open('/f', parseOpenFlags('r'));
        await expect(s.read(h, new Uint8Array(4), 2, 4, null)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
        if (rooted) await expect(s.read(h, new Uint8Array(4), 0, 4, -1)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
        if (rooted) await expect(s.truncate('/f', -1)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
        await s.close(h);
      });
    });

    describe('metadata', () => {
      test('chmod sets permission bits; O_CREAT applies the mode', async (s) => {
        await writeFile(s, '/f', 'x');
        await s.chmod('/f', 0o640);
        expect((await s.stat('/f')).mode & 0o7777).toBe(0o640);
        const h = await s.open('/g', parseOpenFlags('wx'), 0o600);
        await s.close(h);
        expect((await s.stat('/g')).mode & 0o777).toBe(0o600);
        await expectCode(s.chmod('/missing', 0o600), 'ENOENT', 'chmod', '/missing');
      });
      test('chown to the owner it has succeeds; a missing path fails', async (s) => {
        await writeFile(s, '/f', 'x');
        const st = await s.stat('/f');
        await s.chown('/f', st.uid, st.gid);
        expect((await s.stat('/f')).uid).toBe(st.uid);
        await expectCode(s.chown('/missing', st.uid, st.gid), 'ENOENT', 'chown', '/missing');
      });
      test('utimes sets access and modification times', async (s) => {
        await writeFile(s, '/f', 'x');
        await s.utimes('/f', 1_000_000_000_000, 1_500_000_000_500);
        const st = await s.stat('/f');
        expect(st.atimeMs).toBe(1_000_000_000_000);
        expect(st.mtimeMs).toBe(1_500_000_000_500);
        await expectCode(s.utimes('/missing', 0, 0), 'ENOENT', 'utime', '/missing');
      });
      test('fchmod, fchown and futimes change the file a handle has open, wherever it went', async (s) => {
        await writeFile(s, '/f', 'x');
        const h = await s.open('/f', parseOpenFlags('r+'));
        await s.rename('/f', '/moved');
        await s.fchmod(h, 0o604);
        expect((await s.stat('/moved')).mode & 0o7777).toBe(0o604);
        const st = await s.stat('/moved');
        await s.fchown(h, st.uid, st.gid);
        expect((await s.fstat(h)).uid).toBe(st.uid);
        await s.futimes(h, 1_200_000_000_000, 1_300_000_000_250);
        const after = await s.stat('/moved');
        expect(after.atimeMs).toBe(1_200_000_000_000);
        expect(after.mtimeMs).toBe(1_300_000_000_250);
        await s.close(h);
        await expectCode(s.fchmod(h, 0o600), 'EBADF', 'fchmod');
        await expectCode(s.fchown(h, st.uid, st.gid), 'EBADF', 'fchown');
        await expectCode(s.futimes(h, 0, 0), 'EBADF', 'futime');
      });
      test('access checks existence and permissions', async (s) => {
        await writeFile(s, '/f', 'x');
        await s.access('/f');
        await s.access('/f', constants.R_OK | constants.W_OK);
        await expectCode(s.access('/missing'), 'ENOENT', 'access', '/missing');
        await s.chmod('/f', 0o644);
        await expectCode(s.access('/f', constants.X_OK), 'EACCES', 'access', '/f');
      });
      test('statfs reports sizes', async (s) => {
        const f = await s.statfs('/');
        expect(f.bsize).toBeGreaterThan(0);
        expect(f.blocks).toBeGreaterThan(0);
        expect(f.bavail).toBeLessThanOrEqual(f.blocks);
      });
      test('fstat of a handle agrees with stat of its path', async (s) => {
        await writeFile(s, '/f', 'abc');
        const h = await s.open('/f', parseOpenFlags('r'));
        const [a, b] = [await s.fstat(h), await s.stat('/f')];
        expect(a.size).toBe(b.size);
        expect(a.mode).toBe(b.mode);
        expect(a.ino).toBe(b.ino);
        await s.close(h);
      });
    });

    describe('directories', () => {
      test('mkdir, readdir with entry types, rmdir', async (s) => {
        await s.mkdir('/d');
        await s.mkdir('/d/sub', 0o750);
        await writeFile(s, '/d/file', 'x');
        await s.symlink('file', '/d/link');
        const entries = (await s.readdir('/d')).sort((x, y) => (x.name < y.name ? -1 : 1));
        expect(entries).toEqual([
          { name: 'file', type: EntryType.File },
          { name: 'link', type: EntryType.Symlink },
          { name: 'sub', type: EntryType.Directory },
        ]);
        expect((await s.stat('/d/sub')).mode & 0o777).toBe(0o750);
        await s.rmdir('/d/sub');
        expect(await names(s, '/d')).toEqual(['file', 'link']);
      });
      test('mkdir and rmdir errors', async (s) => {
        await s.mkdir('/d');
        await writeFile(s, '/d/f', 'x');
        await expectCode(s.mkdir('/d'), 'EEXIST', 'mkdir', '/d');
        await expectCode(s.mkdir('/d/f'), 'EEXIST', 'mkdir', '/d/f');
        await expectCode(s.mkdir('/x/y'), 'ENOENT', 'mkdir', '/x/y');
        await expectCode(s.mkdir('/d/f/y'), 'ENOTDIR', 'mkdir', '/d/f/y');
        await expectCode(s.rmdir('/d'), 'ENOTEMPTY', 'rmdir', '/d');
        await expectCode(s.rmdir('/d/f'), 'ENOTDIR', 'rmdir', '/d/f');
        await expectCode(s.rmdir('/missing'), 'ENOENT', 'rmdir', '/missing');
        await expectCode(s.unlink('/d'), 'EISDIR', 'unlink', '/d');
        await expectCode(s.unlink('/missing'), 'ENOENT', 'unlink', '/missing');
      });
      test('readdir errors', async (s) => {
        await writeFile(s, '/f', 'x');
        await expectCode(s.readdir('/f'), 'ENOTDIR', 'scandir', '/f');
        await expectCode(s.readdir('/missing'), 'ENOENT', 'scandir', '/missing');
        expect(await s.readdir('/')).toEqual([{ name: 'f', type: EntryType.File }]);
      });
      test('. and .. are resolved, and are never listed', async (s) => {
        await s.mkdir('/a');
        await s.mkdir('/a/b');
        await writeFile(s, '/a/./b/../f', 'x');
        expect(await readFile(s, '/a/f')).toBe('x');
        expect(await names(s, '/a/b/..')).toEqual(['b', 'f']);
        if (rooted) expect(await names(s, '/..')).toEqual(['a']);
      });
      test('a trailing slash or a final . names a directory, as the kernel rules', async (s) => {
        await writeFile(s, '/f', 'x');
        await s.mkdir('/d');
        await expectCode(s.stat('/f/'), 'ENOTDIR', 'stat', '/f/');
        await expectCode(s.lstat('/f/'), 'ENOTDIR', 'lstat', '/f/');
        expect((await s.stat('/d/')).mode & constants.S_IFMT).toBe(constants.S_IFDIR);
        await expectCode(s.open('/f/', parseOpenFlags('r')), 'ENOTDIR', 'open', '/f/');
        await expectCode(s.open('/new/', parseOpenFlags('w')), 'EISDIR', 'open', '/new/');
        await expectCode(s.readdir('/f/'), 'ENOTDIR', 'scandir', '/f/');
        await expectCode(s.unlink('/f/'), 'ENOTDIR', 'unlink', '/f/');
        await expectCode(s.truncate('/f/', 0), 'ENOTDIR');
        await expectCode(s.rename('/f/', '/g'), 'ENOTDIR', 'rename', '/f/');
        await expectCode(s.rename('/f', '/g/'), 'ENOTDIR', 'rename', '/f');
        await s.mkdir('/e/');
        await expectCode(s.rmdir('/e/.'), 'EINVAL', 'rmdir', '/e/.');
        await expectCode(s.mkdir('/e/.'), 'EEXIST', 'mkdir', '/e/.');
        await expectCode(s.rename('/e/.', '/y'), 'EBUSY', 'rename', '/e/.');
        await s.rename('/e/', '/e2/');
        await s.rmdir('/e2/');
        expect(await names(s, '/')).toEqual(['d', 'f']);
        // A call that makes or removes an entry never acts on a symlink's
        // target because of a trailing slash; a lookup follows it.
        await s.symlink('d', '/ld');
        await s.symlink('nowhere', '/dangling');
        expect((await s.lstat('/ld/')).mode & constants.S_IFMT).toBe(constants.S_IFDIR);
        await expectCode(s.rmdir('/ld/'), 'ENOTDIR', 'rmdir', '/ld/');
        await expectCode(s.unlink('/ld/'), 'ENOTDIR', 'unlink', '/ld/');
        await expectCode(s.unlink('/d/'), 'EISDIR', 'unlink', '/d/');
        await expectCode(s.mkdir('/dangling/'), 'EEXIST', 'mkdir', '/dangling/');
        await expectCode(s.rename('/ld/', '/x'), 'ENOTDIR', 'rename', '/ld/');
        await expectCode(s.rename('/f', '/ld/'), 'ENOTDIR', 'rename', '/f');
        expect(await names(s, '/')).toEqual(['d', 'dangling', 'f', 'ld']);
        await s.unlink('/ld');
        await s.unlink('/dangling');
        if (rooted) {
          // The root itself is never removed or renamed, whatever names it.
          await expectCode(s.rmdir('/'), 'EBUSY', 'rmdir', '/');
          await expectCode(s.rmdir('/..'), 'ENOTEMPTY', 'rmdir', '/..');
          await expectCode(s.rename('/d/..', '/z'), 'EBUSY', 'rename', '/d/..');
        }
      });
      test('readdir while entries change lists every unchanged entry exactly once', async (s) => {
        await s.mkdir('/d');
        for (let i = 0; i < 150; i++) await writeFile(s, `/d/stable-${i}`, '');
        for (let i = 0; i < 50; i++) await writeFile(s, `/d/churn-${i}`, '');
        const churn = (async () => {
          for (let i = 0; i < 50; i++) {
            await s.unlink(`/d/churn-${i}`);
            await writeFile(s, `/d/new-${i}`, '');
          }
        })();
        const listings = await Promise.all([s.readdir('/d'), s.readdir('/d'), s.readdir('/d')]);
        await churn;
        for (const l of listings) {
          const stable = l.map((e) => e.name).filter((n) => n.startsWith('stable-'));
          expect(stable.length).toBe(150);
          expect(new Set(l.map((e) => e.name)).size).toBe(l.length);
        }
        expect((await names(s, '/d')).length).toBe(200);
      });
    });

    describe('rename', () => {
      test('a file over an existing file replaces it atomically', async (s) => {
        await writeFile(s, '/a', 'new');
        await writeFile(s, '/b', 'old');
        await s.rename('/a', '/b');
        expect(await readFile(s, '/b')).toBe('new');
        expect(await names(s, '/')).toEqual(['b']);
      });
      test('a directory over an empty directory, with its contents', async (s) => {
        await s.mkdir('/d');
        await writeFile(s, '/d/f', 'x');
        await s.mkdir('/e');
        await s.rename('/d', '/e');
        expect(await readFile(s, '/e/f')).toBe('x');
        await expectCode(s.stat('/d'), 'ENOENT');
      });
      test('the errors rename(2) gives', async (s) => {
        await s.mkdir('/d');
        await s.mkdir('/d/sub');
        await s.mkdir('/full');
        await writeFile(s, '/full/f', 'x');
        await writeFile(s, '/f', 'x');
        await expectCode(s.rename('/d', '/full'), 'ENOTEMPTY', 'rename', '/d');
        await expectCode(s.rename('/f', '/d'), 'EISDIR', 'rename', '/f');
        await expectCode(s.rename('/d', '/f'), 'ENOTDIR', 'rename', '/d');
        await expectCode(s.rename('/d', '/d/sub/x'), 'EINVAL', 'rename', '/d');
        await expectCode(s.rename('/missing', '/x'), 'ENOENT', 'rename', '/missing');
        await expectCode(s.rename('/f', '/missing/x'), 'ENOENT', 'rename', '/f');
      });
      test('errors of rename name both paths', async (s) => {
        let err: (NodeJS.ErrnoException & { dest?: string }) | undefined;
        await s.rename('/missing', '/x').catch((e) => (err = e));
        expect(err?.path).toBe('/missing');
        expect(err?.dest).toBe('/x');
        expect(err?.message).toBe("ENOENT: no such file or directory, rename '/missing' -> '/x'");
      });
      test('noReplace refuses an existing destination and leaves both', async (s) => {
        await writeFile(s, '/a', 'a');
        await writeFile(s, '/b', 'b');
        await expectCode(s.rename('/a', '/b', { noReplace: true }), 'EEXIST', 'rename', '/a');
        expect(await readFile(s, '/a')).toBe('a');
        expect(await readFile(s, '/b')).toBe('b');
        await s.rename('/a', '/c', { noReplace: true });
        expect(await names(s, '/')).toEqual(['b', 'c']);
      });
      test('rename onto itself, or onto a hard link of itself, changes nothing', async (s) => {
        await writeFile(s, '/a', 'a');
        await s.rename('/a', '/a');
        await s.link('/a', '/b');
        await s.rename('/a', '/b');
        expect(await names(s, '/')).toEqual(['a', 'b']);
      });
      test('a handle open across a rename keeps its file', async (s) => {
        await writeFile(s, '/a', 'content');
        const h = await s.open('/a', parseOpenFlags('r'));
        await s.rename('/a', '/b');
        const b = new Uint8Array(7);
        await s.read(h, b, 0, 7, 0);
        expect(dec(b)).toBe('content');
        await s.close(h);
      });
    });

    describe('links', () => {
      test('hard links share content and count', async (s) => {
        await writeFile(s, '/a', 'shared');
        await s.link('/a', '/b');
        expect((await s.stat('/a')).nlink).toBe(2);
        await writeFile(s, '/b', 'changed', 'r+');
        expect(await readFile(s, '/a')).toBe('changed');
        await s.unlink('/a');
        expect((await s.stat('/b')).nlink).toBe(1);
        await expectCode(s.link('/b', '/b'), 'EEXIST', 'link', '/b');
        await expectCode(s.link('/missing', '/c'), 'ENOENT', 'link', '/missing');
        await s.mkdir('/d');
        await expectCode(s.link('/d', '/e'), 'EPERM', 'link', '/d');
      });
      test('symlinks: stat follows, lstat does not, readlink reads', async (s) => {
        await s.mkdir('/d');
        await writeFile(s, '/d/target', 'via link');
        await s.symlink('d/target', '/rel');
        if (rooted) {
          await s.symlink('/d/target', '/abs');
          expect(await readFile(s, '/abs')).toBe('via link');
        }
        await s.symlink('d', '/dirlink');
        expect(await readFile(s, '/rel')).toBe('via link');
        expect(await readFile(s, '/dirlink/target')).toBe('via link');
        expect((await s.lstat('/rel')).mode & constants.S_IFMT).toBe(constants.S_IFLNK);
        expect((await s.stat('/rel')).mode & constants.S_IFMT).toBe(constants.S_IFREG);
        expect(await s.readlink('/rel')).toBe('d/target');
        await expectCode(s.readlink('/d/target'), 'EINVAL', 'readlink', '/d/target');
        await expectCode(s.symlink('x', '/rel'), 'EEXIST', 'symlink');
      });
      test('dangling and looping symlinks', async (s) => {
        await s.symlink('nowhere', '/dangling');
        await expectCode(s.stat('/dangling'), 'ENOENT', 'stat', '/dangling');
        expect((await s.lstat('/dangling')).mode & constants.S_IFMT).toBe(constants.S_IFLNK);
        await writeFile(s, '/dangling', 'created through the link');
        expect(await readFile(s, '/nowhere')).toBe('created through the link');
        await s.symlink('loop2', '/loop1');
        await s.symlink('loop1', '/loop2');
        await expectCode(s.stat('/loop1'), 'ELOOP', 'stat', '/loop1');
        await s.unlink('/loop1');
        expect(await names(s, '/')).toEqual(['dangling', 'loop2', 'nowhere']);
      });
      test('unlink removes a symlink, not its target', async (s) => {
        await writeFile(s, '/t', 'x');
        await s.symlink('t', '/l');
        await s.unlink('/l');
        expect(await readFile(s, '/t')).toBe('x');
      });
    });

    describe('lifecycle', () => {
      test('unmount closes the handles still open', async (s) => {
        await writeFile(s, '/f', 'x');
        const h = await s.open('/f', parseOpenFlags('r'));
        await s.unmount();
        await expectCode(s.read(h, new Uint8Array(1), 0, 1, 0), 'EBADF', 'read');
      });
    });

    describe('randomized sequences against node:fs', () => {
      it(
        'every step and the final tree match node:fs',
        async () => {
          await assertMatchesOracle(
            async () => {
              const t = await create();
              const dir = await temporaryDirectory('oracle-');
              return {
                service: t.service,
                oracle: nodeFsLibservice(dir.path),
                dispose: async () => {
                  await t.service.unmount();
                  await t.dispose?.();
                  await dir.remove();
                },
              };
            },
            { runs: options.runs ?? 60 },
          );
        },
        options.timeout ?? 120_000,
      );
    });
  });
}
