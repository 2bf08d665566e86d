import { describe, expect, it } from 'vitest';
import { runReadmeExample } from '../../../tooling/test-helpers.js';

describe('README', () => {
  it('runs its example as written and prints what it says', () => {
    const out = runReadmeExample(new URL('../', import.meta.url), '@polytropon/libservice', []);
    expect(out.trim().split('\n')).toEqual(['5', 'ENOENT stat /../../etc/passwd']);
  });
});
