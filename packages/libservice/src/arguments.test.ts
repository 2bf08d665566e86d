import { describe, expect, it } from 'vitest';
import { checkPath, splitPath } from './arguments.js';

const codeOf = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return [(e as Error).constructor.name, (e as { code?: unknown }).code];
  }
  return 'no error';
};

describe('path arguments', () => {
  it('splitPath drops empty and "." components and keeps ".."', () => {
    expect(splitPath('/')).toEqual([]);
    expect(splitPath('//a/./b//../c/')).toEqual(['a', 'b', '..', 'c']);
  });

  it('checkPath refuses what splitPath refuses, with the same errors, and returns the path whole', () => {
    for (const bad of [undefined, 7, Buffer.from('/a'), 'a/b', '', '/a\0b']) {
      expect(codeOf(() => checkPath(bad, 'target'))).toEqual(codeOf(() => splitPath(bad, 'target')));
      expect(codeOf(() => checkPath(bad))).not.toBe('no error');
    }
    expect(codeOf(() => checkPath(7))).toEqual(['TypeError', 'ERR_INVALID_ARG_TYPE']);
    expect(codeOf(() => checkPath('rel'))).toEqual(['TypeError', 'ERR_INVALID_ARG_VALUE']);
    for (const good of ['/', '/a', '//a/./b/../', '/é/ü']) expect(checkPath(good)).toBe(good);
  });
});
