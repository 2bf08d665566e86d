import { describeConformance, temporaryDirectory } from './conformance/index.js';
import { LocalLibservice } from './local.js';

for (const syscalls of ['inline', 'threadpool'] as const) {
  describeConformance(`local directory (${syscalls} system calls)`, async () => {
    const dir = await temporaryDirectory('local-');
    return { service: await LocalLibservice.create({ root: dir.path, syscalls }), dispose: dir.remove };
  });
}

import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectCode, readFile, writeFile } from './conformance/index.js';
import { parseOpenFlags } from './flags.js';

describe('LocalLibservice confinement', () => {
  // base/root is served; base/outside holds what must stay out of reach.
  let base: { path: string; remove(): Promise<void> };
  let root: string;
  let outside: string;
  let s: LocalLibservice;
  beforeEach(async () => {
    base = await temporaryDirectory('confine-');
    root = join(base.path, 'root');
    outside = join(base.path, 'outside');
    mkdirSync(root);
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'secret');
    s = await LocalLibservice.create({ root });
  });
  afterEach(async () => {
    await s.unmount();
    await base.remove();
  });

  it('.. stops at the root', async () => {
    await expectCode(s.stat('/../outside/secret'), 'ENOENT', 'stat', '/../outside/secret');
    await expectCode(s.open('/../../../../outside/secret', parseOpenFlags('r')), 'ENOENT');
    await writeFile(s, '/../../x', 'lands inside');
    expect(readFileSync(join(root, 'x'), 'utf8')).toBe('lands inside');
  });

  it("a path through '..' names the directory it climbs to (found by the native path's differential test)", async () => {
    mkdirSync(join(root, 'a/b'), { recursive: true });
    expect((await s.stat('/a/..')).ino).toBe(statSync(root).ino);
    expect((await s.stat('/a/b/..')).ino).toBe(statSync(join(root, 'a')).ino);
    expect((await s.lstat('/a/b/../..')).ino).toBe(statSync(root).ino);
    // '..' of a file, or of a symlink to one, is ENOTDIR.
    writeFileSync(join(root, 'a/f'), '');
    symlinkSync('a/f', join(root, 'l'));
    await expectCode(s.stat('/a/f/..'), 'ENOTDIR', 'stat', '/a/f/..');
    await expectCode(s.stat('/l/..'), 'ENOTDIR', 'stat', '/l/..');
    await expectCode(s.readdir('/l/../a'), 'ENOTDIR', 'scandir', '/l/../a');
  });

  it('an absolute symlink planted in the tree resolves beneath the root', async () => {
    symlinkSync(outside, join(root, 'escape')); // planted by someone with host access
    symlinkSync(join(outside, 'secret'), join(root, 'secret-link'));
    await expectCode(s.readdir('/escape'), 'ENOENT');
    await expectCode(s.open('/secret-link', parseOpenFlags('r')), 'ENOENT');
    await expectCode(s.open('/escape/new', parseOpenFlags('w')), 'ENOENT');
    await expectCode(s.chmod('/secret-link', 0o777), 'ENOENT');
    await expectCode(s.truncate('/secret-link', 0), 'ENOENT');
    expect(existsSync(join(outside, 'new'))).toBe(false);
    // The same names made inside the root are what the links reach.
    mkdirSync(join(root, outside), { recursive: true });
    writeFileSync(join(root, outside, 'secret'), 'inside');
    expect(await readFile(s, '/secret-link')).toBe('inside');
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('secret');
    expect(statSync(join(outside, 'secret')).mode & 0o777).not.toBe(0o777);
  });

  it('relative symlinks cannot climb out, even through several links', async () => {
    symlinkSync('../outside', join(root, 'up'));
    symlinkSync('../../../../../../..' + outside, join(root, 'far'));
    mkdirSync(join(root, 'd'));
    symlinkSync('../up/secret', join(root, 'd', 'chain'));
    await expectCode(s.stat('/up/secret'), 'ENOENT');
    await expectCode(s.stat('/far/secret'), 'ENOENT');
    await expectCode(s.stat('/d/chain'), 'ENOENT');
    await expectCode(s.rename('/d', '/up/d'), 'ENOENT');
    await expectCode(s.link('/d/chain', '/far/hard'), 'ENOENT');
    expect(existsSync(join(outside, 'd'))).toBe(false);
  });

  it('creating through a dangling symlink that points out creates nothing outside', async () => {
    symlinkSync(join(outside, 'created'), join(root, 'dangling'));
    await expectCode(s.open('/dangling', parseOpenFlags('w')), 'ENOENT');
    expect(existsSync(join(outside, 'created'))).toBe(false);
  });

  it('symlink targets are stored as given and resolved inside on use', async () => {
    await s.symlink('/../outside/secret', '/l');
    expect(await s.readlink('/l')).toBe('/../outside/secret');
    await expectCode(s.stat('/l'), 'ENOENT');
  });

  it('errors name the service path, never the host directory', async () => {
    const err = await s.stat('/missing/file').catch((e: Error) => e);
    expect((err as Error).message).toBe("ENOENT: no such file or directory, stat '/missing/file'");
    expect(JSON.stringify(err)).not.toContain(base.path);
  });

  it('a symlink loop fails with ELOOP', async () => {
    symlinkSync('b', join(root, 'a'));
    symlinkSync('/a', join(root, 'b'));
    await expectCode(s.stat('/a/x'), 'ELOOP', 'stat', '/a/x');
  });
});

describe('LocalLibservice options and limits', () => {
  it('tells hosts when it unmounts, once, unless they stopped listening', async () => {
    const base = await temporaryDirectory('unmount-');
    const s = await LocalLibservice.create({ root: base.path, maxHandles: 7 });
    expect([s.syscalls, s.maxHandles]).toEqual(['inline', 7]);
    const heard: string[] = [];
    s.onUnmount(() => heard.push('a'));
    const stop = s.onUnmount(() => heard.push('b'));
    stop();
    await s.unmount();
    await s.unmount();
    s.onUnmount(() => heard.push('late'));
    expect(heard).toEqual(['a', 'late']);
    await base.remove();
  });

  it('the root must be an existing directory', async () => {
    const base = await temporaryDirectory('opts-');
    writeFileSync(join(base.path, 'file'), '');
    await expectCode(LocalLibservice.create({ root: join(base.path, 'missing') }), 'ENOENT');
    await expectCode(LocalLibservice.create({ root: join(base.path, 'file') }), 'ENOTDIR');
    await expect(LocalLibservice.create({ root: '' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(LocalLibservice.create({ root: base.path, maxHandles: 0 })).rejects.toThrow(/maxHandles/);
    await expect(LocalLibservice.create({ root: base.path, extra: 1 } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await base.remove();
  });

  it('maxHandles bounds open handles with EMFILE', async () => {
    const base = await temporaryDirectory('limit-');
    const s = await LocalLibservice.create({ root: base.path, maxHandles: 3 });
    await writeFile(s, '/f', 'x');
    const hs = [await s.open('/f', 0), await s.open('/f', 0), await s.open('/f', 0)];
    await expectCode(s.open('/f', 0), 'EMFILE', 'open', '/f');
    await s.close(hs[0]!);
    hs[0] = await s.open('/f', 0);
    await s.unmount();
    await expectCode(s.stat('/f'), 'ENOTCONN', 'stat', '/f');
    await base.remove();
  });
});
