// The union over real multi-layer stacks: what an image's layers hold, as
// unpacked OCI layers (whiteouts and opaque markers as plain files).
import { LocalLibservice, type Libservice } from '@polytropon/libservice';
import { assertMatchesOracle, expectCode, nodeFsLibservice, readFile, temporaryDirectory, writeFile } from '@polytropon/libservice/conformance';
import * as fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UnionLibservice } from './union.js';

/** A layer's content: path -> file content, `{ dir }`, `{ link }`, `{ mode }` extras. */
type Spec = Record<string, string | { dir: true; mode?: number } | { link: string } | { file: string; mode: number; mtimeMs?: number }>;

function writeLayer(root: string, spec: Spec): void {
  mkdirSync(root, { recursive: true });
  for (const [p, v] of Object.entries(spec)) {
    const host = join(root, p);
    mkdirSync(dirname(host), { recursive: true });
    if (typeof v === 'string') writeFileSync(host, v);
    else if ('dir' in v) {
      mkdirSync(host, { recursive: true });
      if (v.mode !== undefined) chmodSync(host, v.mode);
    } else if ('link' in v) symlinkSync(v.link, host);
    else {
      writeFileSync(host, v.file);
      chmodSync(host, v.mode);
      if (v.mtimeMs !== undefined) utimesSync(host, v.mtimeMs / 1000, v.mtimeMs / 1000);
    }
  }
}

interface Stack {
  union: UnionLibservice;
  upperDir: string;
  lowerDirs: string[];
  dispose(): Promise<void>;
}

const open: Stack[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.dispose();
});

/** A union over lower layers written from specs (top first), with an empty upper unless given. */
async function stack(lowers: Spec[], upper: Spec = {}): Promise<Stack> {
  const dir = await temporaryDirectory('layers-');
  const upperDir = join(dir.path, 'upper');
  writeLayer(upperDir, upper);
  const lowerDirs = lowers.map((spec, i) => {
    const d = join(dir.path, `lower${i}`);
    writeLayer(d, spec);
    return d;
  });
  const branches: Libservice[] = [];
  for (const d of [upperDir, ...lowerDirs]) branches.push(await LocalLibservice.create({ root: d }));
  const union = await UnionLibservice.create({ upper: branches[0]!, lowers: branches.slice(1) });
  const s: Stack = {
    union,
    upperDir,
    lowerDirs,
    dispose: async () => {
      await union.unmount();
      for (const b of branches) await b.unmount();
      await dir.remove();
    },
  };
  open.push(s);
  return s;
}

const names = async (s: Libservice, p: string) => (await s.readdir(p)).map((e) => e.name).sort();

/** Every path under a host directory, with '/' after directories. */
function hostTree(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const n of readdirSync(join(root, rel)).sort()) {
    const p = rel ? `${rel}/${n}` : n;
    if (lstatSync(join(root, p)).isDirectory()) out.push(`${p}/`, ...hostTree(root, p));
    else out.push(p);
  }
  return out;
}

describe('UnionLibservice over several layers', () => {
  it('the upper layer wins, names show once, and whiteouts act through every layer below', async () => {
    const { union } = await stack([
      { 'etc/hosts': 'middle', 'etc/.wh.passwd': '', '.wh.opt': '' },
      { 'etc/hosts': 'bottom', 'etc/passwd': 'root:x', 'etc/group': 'g', 'opt/tool': 't', usr: { dir: true } },
    ], { 'etc/hosts': 'upper' });
    expect(await readFile(union, '/etc/hosts')).toBe('upper');
    expect(await readFile(union, '/etc/group')).toBe('g');
    expect(await names(union, '/etc')).toEqual(['group', 'hosts']);
    expect(await names(union, '/')).toEqual(['etc', 'usr']);
    await expectCode(union.stat('/etc/passwd'), 'ENOENT', 'stat', '/etc/passwd');
    await expectCode(union.stat('/opt/tool'), 'ENOENT', 'stat', '/opt/tool');
  });

  it('an opaque directory hides what the layers below hold in it; a file hides a directory below', async () => {
    const { union } = await stack([
      { 'var/.wh..wh..opq': '', 'var/new': 'n', data: 'a file over a directory' },
      { 'var/old': 'o', 'var/sub/deep': 'd', 'data/inner': 'hidden' },
    ]);
    expect(await names(union, '/var')).toEqual(['new']);
    await expectCode(union.stat('/var/old'), 'ENOENT');
    expect(await readFile(union, '/data')).toBe('a file over a directory');
    await expectCode(union.stat('/data/inner'), 'ENOTDIR');
  });

  it('directories merge down to the first layer that has a non-directory there', async () => {
    const { union } = await stack([{ 'd/a': '0' }, { d: 'file in between' }, { 'd/b': '2' }]);
    expect(await names(union, '/d')).toEqual(['a']);
    const { union: u2 } = await stack([{ 'd/a': '0' }, { 'd/b': '1' }, { 'd/c': '2', 'd/a': 'shadowed' }]);
    expect(await names(u2, '/d')).toEqual(['a', 'b', 'c']);
    expect(await readFile(u2, '/d/a')).toBe('0');
  });

  it('markers never show, cannot be opened, and their names cannot be made', async () => {
    const { union } = await stack([{ 'd/.wh.x': '', 'd/y': 'y', 'd/.wh..wh..opq': '' }]);
    expect(await names(union, '/d')).toEqual(['y']);
    await expectCode(union.open('/d/.wh.x', constants.O_RDONLY), 'ENOENT', 'open', '/d/.wh.x');
    await expectCode(union.stat('/d/.wh..wh..opq'), 'ENOENT');
    await expectCode(union.open('/d/.wh.new', constants.O_CREAT | constants.O_WRONLY), 'EINVAL', 'open', '/d/.wh.new');
    await expectCode(union.mkdir('/.wh.dir'), 'EINVAL', 'mkdir', '/.wh.dir');
    await expectCode(union.rename('/d/y', '/d/.wh.y'), 'EINVAL', 'rename', '/d/y');
  });

  it('writing a lower file copies it up with its content, mode and times; the lower layer is untouched', async () => {
    const s = await stack([{ 'a/b': { dir: true, mode: 0o750 }, 'a/b/f': { file: '0123456789', mode: 0o640, mtimeMs: 1_600_000_000_000 } }]);
    const before = await s.union.stat('/a/b/f');
    const h = await s.union.open('/a/b/f', constants.O_RDWR);
    await s.union.write(h, Buffer.from('XY'), 0, 2, 3);
    await s.union.close(h);
    expect(await readFile(s.union, '/a/b/f')).toBe('012XY56789');
    const after = await s.union.stat('/a/b/f');
    expect(after.mode).toBe(before.mode);
    expect(readFileSync(join(s.lowerDirs[0]!, 'a/b/f'), 'utf8')).toBe('0123456789');
    expect(readFileSync(join(s.upperDir, 'a/b/f'), 'utf8')).toBe('012XY56789');
    // The parents came up with their modes.
    expect(lstatSync(join(s.upperDir, 'a/b')).mode & 0o7777).toBe(0o750);
    // Only the write changed mtime; chmod alone keeps the lower times.
    await s.union.chmod('/a/b', 0o700);
    expect((await s.union.stat('/a/b')).mode & 0o7777).toBe(0o700);
    expect(hostTree(s.upperDir)).toEqual(['a/', 'a/b/', 'a/b/f']);
  });

  it('chmod, utimes and truncate copy up; times survive a copy-up', async () => {
    const s = await stack([{ f: { file: 'content', mode: 0o644, mtimeMs: 1_500_000_000_000 }, g: 'gg', t: 'truncate me' }]);
    await s.union.chmod('/f', 0o600);
    const st = await s.union.stat('/f');
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.mtimeMs).toBe(1_500_000_000_000);
    expect(await readFile(s.union, '/f')).toBe('content');
    await s.union.utimes('/g', 1_000_000, 2_000_000);
    expect((await s.union.stat('/g')).mtimeMs).toBe(2_000_000);
    await s.union.truncate('/t', 4);
    expect(await readFile(s.union, '/t')).toBe('trun');
    expect(hostTree(s.upperDir)).toEqual(['f', 'g', 't']);
    expect(readFileSync(join(s.lowerDirs[0]!, 't'), 'utf8')).toBe('truncate me');
  });

  it('fchmod, fchown and futimes through a read handle on a lower file copy it up; a file moved away fails with EROFS', async () => {
    const s = await stack([{ d: { file: 'content', mode: 0o644, mtimeMs: 1_500_000_000_000 }, e: 'e', m: 'moves' }]);
    const r = await s.union.open('/d', constants.O_RDONLY);
    await s.union.fchmod(r, 0o600);
    expect((await s.union.stat('/d')).mode & 0o777).toBe(0o600);
    expect(lstatSync(join(s.lowerDirs[0]!, 'd')).mode & 0o777).toBe(0o644);
    const own = await s.union.stat('/d');
    await s.union.fchown(r, own.uid, own.gid);
    await s.union.futimes(r, 1_000_000, 2_000_000);
    expect((await s.union.stat('/d')).mtimeMs).toBe(2_000_000);
    expect(await readFile(s.union, '/d')).toBe('content');
    // The handle keeps reading the lower file (as overlayfs before Linux 4.19).
    const b = Buffer.alloc(7);
    expect(await s.union.read(r, b, 0, 7, 0)).toBe(7);
    await s.union.close(r);
    // An upper file's handle changes it in place.
    const w = await s.union.open('/e', constants.O_RDWR);
    await s.union.fchmod(w, 0o640);
    expect((await s.union.stat('/e')).mode & 0o777).toBe(0o640);
    await s.union.close(w);
    const m = await s.union.open('/m', constants.O_RDONLY);
    await s.union.rename('/m', '/moved');
    await expectCode(s.union.fchmod(m, 0o600), 'EROFS', 'fchmod');
    expect(lstatSync(join(s.lowerDirs[0]!, 'm')).mode & 0o777).toBe(0o644);
    await s.union.close(m);
    await expectCode(s.union.futimes(m, 0, 0), 'EBADF', 'futime');
    expect(hostTree(s.upperDir)).toEqual(['.wh.m', 'd', 'e', 'moved']);
  });

  it('O_TRUNC on a lower file copies up nothing of its content', async () => {
    const s = await stack([{ big: 'x'.repeat(100_000) }]);
    await writeFile(s.union, '/big', 'small');
    expect(await readFile(s.union, '/big')).toBe('small');
  });

  it('a handle opened for reading before a copy-up keeps reading the lower file (as overlayfs)', async () => {
    const s = await stack([{ f: 'old' }]);
    const r = await s.union.open('/f', constants.O_RDONLY);
    await writeFile(s.union, '/f', 'new');
    const b = Buffer.alloc(3);
    await s.union.read(r, b, 0, 3, 0);
    expect(b.toString()).toBe('old');
    await s.union.close(r);
  });

  it('unlink of a lower file leaves a whiteout; making the name again removes it', async () => {
    const s = await stack([{ 'd/f': 'lower', 'd/g': 'g' }]);
    await s.union.unlink('/d/f');
    await expectCode(s.union.stat('/d/f'), 'ENOENT');
    expect(await names(s.union, '/d')).toEqual(['g']);
    expect(hostTree(s.upperDir)).toEqual(['d/', 'd/.wh.f']);
    await writeFile(s.union, '/d/f', 'again');
    expect(await readFile(s.union, '/d/f')).toBe('again');
    expect(hostTree(s.upperDir)).toEqual(['d/', 'd/f']);
    await s.union.unlink('/d/f');
    expect(hostTree(s.upperDir)).toEqual(['d/', 'd/.wh.f']);
  });

  it('rmdir of a lower directory, then mkdir there: the new directory is opaque', async () => {
    const s = await stack([{ 'd/x': 'x', 'd/sub/y': 'y' }, { 'd/z': 'z' }]);
    await expectCode(s.union.rmdir('/d'), 'ENOTEMPTY', 'rmdir', '/d');
    await s.union.unlink('/d/x');
    await s.union.unlink('/d/z');
    await s.union.unlink('/d/sub/y');
    await s.union.rmdir('/d/sub');
    expect(await names(s.union, '/d')).toEqual([]);
    await s.union.rmdir('/d');
    await expectCode(s.union.readdir('/d'), 'ENOENT');
    expect(hostTree(s.upperDir)).toEqual(['.wh.d']);
    await s.union.mkdir('/d');
    expect(await names(s.union, '/d')).toEqual([]);
    expect(hostTree(s.upperDir)).toEqual(['d/', 'd/.wh..wh..opq']);
    await writeFile(s.union, '/d/new', 'n');
    expect(await names(s.union, '/d')).toEqual(['new']);
  });

  it('rename of a lower file moves it and hides the old name', async () => {
    const s = await stack([{ 'a/f': { file: 'lower file', mode: 0o600 } }]);
    await s.union.mkdir('/b');
    await s.union.rename('/a/f', '/b/g');
    expect(await readFile(s.union, '/b/g')).toBe('lower file');
    expect((await s.union.stat('/b/g')).mode & 0o777).toBe(0o600);
    await expectCode(s.union.stat('/a/f'), 'ENOENT');
    expect(hostTree(s.upperDir)).toEqual(['a/', 'a/.wh.f', 'b/', 'b/g']);
  });

  it('rename of a directory merged over several layers moves its whole merged view, leaving no stale markers', async () => {
    const s = await stack(
      [{ 'src/a': 'A0', 'src/.wh.gone': '', 'src/sub/x': 'x0' }, { 'src/b': 'B1', 'src/gone': 'never shown', 'src/sub/y': { link: 'x' } }],
      { 'src/c': 'C upper', 'src/.wh.b': '' },
    );
    expect(await names(s.union, '/src')).toEqual(['a', 'c', 'sub']);
    await s.union.rename('/src', '/dst');
    await expectCode(s.union.stat('/src'), 'ENOENT');
    expect(await names(s.union, '/dst')).toEqual(['a', 'c', 'sub']);
    expect(await readFile(s.union, '/dst/a')).toBe('A0');
    expect(await readFile(s.union, '/dst/c')).toBe('C upper');
    expect(await readFile(s.union, '/dst/sub/y')).toBe('x0');
    // Upper: the moved tree (no markers in it), and one whiteout for the old name.
    expect(hostTree(s.upperDir)).toEqual(['.wh.src', 'dst/', 'dst/a', 'dst/c', 'dst/sub/', 'dst/sub/x', 'dst/sub/y']);
    // Back again over the whiteout: the old name shows exactly what moved.
    await s.union.rename('/dst', '/src');
    expect(await names(s.union, '/src')).toEqual(['a', 'c', 'sub']);
    expect(hostTree(s.upperDir)).toEqual(['src/', 'src/.wh..wh..opq', 'src/a', 'src/c', 'src/sub/', 'src/sub/x', 'src/sub/y']);
  });

  it('a directory with lower content renamed under an open handle: writes through the handle land in the moved file', async () => {
    const s = await stack([{ 'd/lower': 'l' }]);
    const h = await s.union.open('/d/mine', constants.O_CREAT | constants.O_WRONLY, 0o644);
    await s.union.link('/d/mine', '/d/alias');
    await s.union.rename('/d', '/d2');
    await s.union.write(h, Buffer.from('late'), 0, 4, 0);
    await s.union.close(h);
    expect(await readFile(s.union, '/d2/mine')).toBe('late');
    expect(await readFile(s.union, '/d2/alias')).toBe('late'); // still one file
    expect(await readFile(s.union, '/d2/lower')).toBe('l');
    await expectCode(s.union.stat('/d'), 'ENOENT');
  });

  it('a rename that fails changes nothing: what the destination hid stays hidden, no work directory is left', async () => {
    const s = await stack([{ 'b/old': 'deleted', a: { dir: true } }]);
    execFileSync('mkfifo', [join(s.lowerDirs[0]!, 'a', 'fifo')]); // a lower entry the contract cannot copy
    await s.union.unlink('/b/old');
    await expectCode(s.union.rename('/a', '/b'), 'ENOTSUP', 'rename', '/a');
    expect(await names(s.union, '/b')).toEqual([]);
    expect(hostTree(s.upperDir)).toEqual(['b/', 'b/.wh.old']);
  });

  it('copy-up keeps setuid and setgid bits with the owner', async () => {
    if (process.getuid?.() !== 0) return; // giving files away needs root
    const s = await stack([{ tool: { file: 'x', mode: 0o755 } }]);
    chownSync(join(s.lowerDirs[0]!, 'tool'), 1000, 1000);
    chmodSync(join(s.lowerDirs[0]!, 'tool'), 0o6755);
    await s.union.utimes('/tool', 1_000_000, 1_000_000);
    const st = await s.union.stat('/tool');
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o6755, 1000, 1000]);
  });

  it('a directory renamed over an empty lower directory does not show the lower content', async () => {
    const s = await stack([{ 'target/.keep-hidden': 'x' }]);
    await s.union.unlink('/target/.keep-hidden');
    await s.union.mkdir('/mine');
    await writeFile(s.union, '/mine/f', 'f');
    await s.union.rename('/mine', '/target');
    expect(await names(s.union, '/target')).toEqual(['f']);
  });

  it('symlinks in a lower layer resolve through the union, into other layers', async () => {
    const { union } = await stack([{ lib: { link: 'usr/lib' }, 'bin/sh': { link: '/usr/bin/dash' } }, { 'usr/lib/libc.so': 'libc', 'usr/bin/dash': 'dash' }]);
    expect(await readFile(union, '/lib/libc.so')).toBe('libc');
    expect(await readFile(union, '/bin/sh')).toBe('dash');
    expect(await union.readlink('/lib')).toBe('usr/lib');
    expect(await names(union, '/lib')).toEqual(['libc.so']);
  });

  it('a hard link to a lower file copies it up first', async () => {
    const s = await stack([{ f: 'linked' }]);
    await s.union.link('/f', '/g');
    expect((await s.union.stat('/f')).nlink).toBe(2);
    await writeFile(s.union, '/g', 'through g', 'r+');
    expect(await readFile(s.union, '/f')).toBe('through g');
  });

  it('a file in the lowest of 16 layers is found, and the cache holds after many lookups', async () => {
    const layers: Spec[] = Array.from({ length: 16 }, (_, i) => ({ [`only-${i}`]: String(i), 'common/f': `layer ${i}` }));
    const { union } = await stack(layers);
    expect(await readFile(union, '/only-15')).toBe('15');
    expect(await readFile(union, '/common/f')).toBe('layer 0');
    expect((await names(union, '/')).length).toBe(17);
    for (let i = 0; i < 100; i++) expect((await union.stat(`/only-${i % 16}`)).size).toBe(String(i % 16).length);
  });

  it('options are checked', async () => {
    await expect(UnionLibservice.create({ upper: {} as Libservice })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    const s = await stack([]);
    await expect(UnionLibservice.create({ upper: s.union, lowers: [s.union], cacheDirectories: -1 })).rejects.toThrow(/cacheDirectories/);
  });
});

// --- randomized: random layers, random steps, compared with node:fs on the layers applied the OCI way ---

type Entry = { path: string; kind: 'file'; data: string; mode: number } | { path: string; kind: 'dir' } | { path: string; kind: 'link'; target: string } | { path: string; kind: 'whiteout' } | { path: string; kind: 'opaque' };

const seg = fc.constantFrom('a', 'b', 'c');
const path = fc.array(seg, { minLength: 1, maxLength: 2 }).map((p) => p.join('/'));
const entry: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({ path, kind: fc.constant('file' as const), data: fc.string({ maxLength: 6 }), mode: fc.constantFrom(0o644, 0o600) }),
  fc.record({ path, kind: fc.constant('dir' as const) }),
  fc.record({ path, kind: fc.constant('link' as const), target: fc.constantFrom('a', 'b', 'c') }),
  fc.record({ path, kind: fc.constant('whiteout' as const) }),
  fc.record({ path, kind: fc.constant('opaque' as const) }),
);

/** Writes a layer from entries, skipping those that clash with earlier ones (a real layer is a tree). */
function writeEntries(root: string, entries: Entry[]): void {
  mkdirSync(root, { recursive: true });
  const taken = new Set<string>();
  for (const e of entries) {
    const parts = e.path.split('/');
    const parents = parts.slice(0, -1);
    const name = parts[parts.length - 1]!;
    const marker = e.kind === 'whiteout' ? `.wh.${name}` : undefined;
    const full = e.kind === 'opaque' ? `${e.path}/.wh..wh..opq` : marker ? [...parents, marker].join('/') : e.path;
    const prefixes = full.split('/').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('/'));
    if (prefixes.some((p) => taken.has(`${p}:leaf`)) || taken.has(`${full}:node`) || taken.has(`${full}:leaf`)) continue;
    if (e.kind === 'whiteout' && taken.has(`${e.path}:node`)) continue;
    if (e.kind !== 'whiteout' && e.kind !== 'opaque' && taken.has(`${[...parents, `.wh.${name}`].join('/')}:leaf`)) continue;
    for (const p of prefixes) taken.add(`${p}:node`);
    const host = join(root, full);
    mkdirSync(dirname(host), { recursive: true });
    if (e.kind === 'dir') {
      mkdirSync(host, { recursive: true });
      taken.add(`${full}:node`);
      continue;
    }
    taken.add(`${full}:leaf`);
    if (e.kind === 'file') {
      writeFileSync(host, e.data);
      chmodSync(host, e.mode);
    } else if (e.kind === 'link') symlinkSync(e.target, host);
    else writeFileSync(host, '');
  }
}

/** Applies an unpacked layer onto a directory the OCI way: markers first, then entries over what is there. */
function applyLayer(layer: string, onto: string, rel = ''): void {
  const here = join(layer, rel);
  const names = readdirSync(here);
  if (names.includes('.wh..wh..opq')) for (const n of readdirSync(join(onto, rel))) rmSync(join(onto, rel, n), { recursive: true, force: true });
  for (const n of names) if (n.startsWith('.wh.') && n !== '.wh..wh..opq') rmSync(join(onto, rel, n.slice(4)), { recursive: true, force: true });
  for (const n of names) {
    if (n.startsWith('.wh.')) continue;
    const src = join(here, n);
    const dst = join(onto, rel, n);
    const st = lstatSync(src);
    const existing = existsSync(dst) || lstatSync(dst, { throwIfNoEntry: false }) !== undefined ? lstatSync(dst) : undefined;
    if (st.isDirectory()) {
      if (existing && !existing.isDirectory()) rmSync(dst, { force: true });
      if (!existing || !existing.isDirectory()) mkdirSync(dst);
      applyLayer(layer, onto, rel ? `${rel}/${n}` : n);
    } else {
      if (existing) rmSync(dst, { recursive: true, force: true });
      // A symlink is copied as a symlink (cpSync would follow one that loops).
      if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
      else cpSync(src, dst);
    }
  }
}

describe('UnionLibservice against node:fs on the same layers applied the OCI way', () => {
  it('random three-layer stacks, random operations: every step matches', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(entry, { maxLength: 8 }), { minLength: 3, maxLength: 3 }), fc.integer(), async (layerEntries, seed) => {
        const dir = await temporaryDirectory('oci-');
        try {
          const lowerDirs = layerEntries.map((entries, i) => {
            const d = join(dir.path, `l${i}`);
            writeEntries(d, entries);
            return d;
          });
          await assertMatchesOracle(
            async () => {
              const run = await temporaryDirectory('run-');
              const oracleDir = join(run.path, 'oracle');
              mkdirSync(oracleDir);
              for (const d of [...lowerDirs].reverse()) applyLayer(d, oracleDir);
              mkdirSync(join(run.path, 'upper'));
              const branches = [await LocalLibservice.create({ root: join(run.path, 'upper') })];
              for (const d of lowerDirs) branches.push(await LocalLibservice.create({ root: d }));
              const union = await UnionLibservice.create({ upper: branches[0]!, lowers: branches.slice(1) });
              return {
                service: union,
                oracle: nodeFsLibservice(oracleDir),
                dispose: async () => {
                  await union.unmount();
                  for (const b of branches) await b.unmount();
                  await run.remove();
                },
              };
            },
            { runs: 3, seed, maxSteps: 25 },
          );
        } finally {
          await dir.remove();
        }
      }),
      { numRuns: 40 },
    );
  }, 180_000);
});
