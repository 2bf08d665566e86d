import { describe, expect, it } from 'vitest';
import { runReadmeExample } from '../../../tooling/test-helpers.js';

describe('README', () => {
  it('runs its example as written and prints what it says', () => {
    const out = runReadmeExample(new URL('../', import.meta.url), '@polytropon/smo-copy', ['demo-ring']);
    expect(out.trim()).toBe('true');
  });
});
