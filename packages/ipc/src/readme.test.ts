import { describe, expect, it } from 'vitest';
import { runReadmeExample } from '../../../tooling/test-helpers.js';

describe('README', () => {
  it('runs its example as written and prints what it says', () => {
    const out = runReadmeExample(new URL('../', import.meta.url), '@polytropon/ipc', ['echo-demo']);
    expect(out.trim()).toBe('7 hello 8 3145728');
  });
});
