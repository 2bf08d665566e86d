import { lstatSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsError } from './errors.js';
import { inlineSyscalls, throwIfNoEntryHidesNotDir } from './syscalls.js';

const shape = (e: unknown) => {
  const { code, errno, syscall, path, message } = e as NodeJS.ErrnoException;
  return { code, errno, syscall, path, message };
};

describe('errors', () => {
  afterEach(() => {
    FsError.stackTraces = true;
  });

  it('FsError.stackTraces = false makes errors without a stack trace, of the same shape', () => {
    const withStack = new FsError('ENOENT', 'open', '/a');
    expect(withStack.stack!.split('\n').length).toBeGreaterThan(1);
    FsError.stackTraces = false;
    const bare = new FsError('ENOENT', 'open', '/a');
    expect(bare.stack).toBe('Error: ENOENT: no such file or directory, open \'/a\'');
    expect(shape(bare)).toEqual(shape(withStack));
    expect(bare).toBeInstanceOf(FsError);
    // Other errors of the process keep theirs.
    expect(new Error('x').stack!.split('\n').length).toBeGreaterThan(1);
    FsError.stackTraces = true;
    expect(new FsError('EIO', 'read').stack!.split('\n').length).toBeGreaterThan(1);
  });

  it("the inline lstat and stat answer a missing path with node:fs's ENOENT, and a path under a file with ENOTDIR", async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'errors-')), 'f');
    writeFileSync(file, 'x');
    for (const [name, own] of [['lstat', lstatSync], ['stat', statSync]] as const) {
      const missing = `/nonexistent-${process.pid}/x`;
      let theirs: unknown;
      try {
        own(missing);
      } catch (e) {
        theirs = e;
      }
      const ours = await inlineSyscalls[name](missing).then(() => undefined, (e: unknown) => e);
      expect(shape(ours)).toEqual(shape(theirs));
      expect(ours).toBeInstanceOf(Error);
      // Other failures are node:fs's own errors.
      for (const under of [`${file}/x`, `${file}/`, `${file}/x/y`]) {
        const notDir = await inlineSyscalls[name](under).then(() => undefined, (e: unknown) => e);
        expect(shape(notDir), under).toMatchObject({ code: 'ENOTDIR', syscall: name, path: under });
      }
      expect((await inlineSyscalls[name]('/')).isDirectory()).toBe(true);
      // The probe says what this Node's own call does under a file.
      let hides: boolean;
      try {
        hides = own(`${file}/x`, { throwIfNoEntry: false }) === undefined;
      } catch {
        hides = false;
      }
      expect(throwIfNoEntryHidesNotDir(name)).toBe(hides);
    }
  });
});
