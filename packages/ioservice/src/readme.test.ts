import { describe, expect, it } from 'vitest';
import { runReadmeExample } from '../../../tooling/test-helpers.js';

describe('README', () => {
  it('runs its custom storage service example as written and prints what it says', () => {
    const out = runReadmeExample(new URL('../', import.meta.url), '@polytropon/ioservice', ['demo-pool']);
    expect(out.trim()).toBe('20 motd');
  });
});
