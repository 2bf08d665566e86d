import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('README', () => {
  it('runs its example as written and prints what it says', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const example = /```js\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    const dist = new URL('../dist/index.js', import.meta.url).href;
    const dir = mkdtempSync(join(tmpdir(), 'ipc-readme-'));
    try {
      const file = join(dir, 'example.mjs');
      // A unique segment name, so parallel runs do not collide.
      const name = `echo-demo-${process.pid}`;
      writeFileSync(file, (example as string).replaceAll("'@polytropon/ipc'", JSON.stringify(dist)).replaceAll("'echo-demo'", JSON.stringify(name)));
      const out = execFileSync(process.execPath, [file], { encoding: 'utf8' });
      expect(out.trim()).toBe('7 hello 8 3145728');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
