import { describe, expect, it } from 'vitest';
import { runReadmeExample } from '../../../tooling/test-helpers.js';

describe('README', () => {
  it('runs its three-layer example as written and prints what it says', () => {
    const out = runReadmeExample(new URL('../', import.meta.url), '@polytropon/libservice-union', []);
    expect(out.trim().split('\n')).toEqual(['os-release', 'app,config 8']);
  });
});
