// Helpers the packages' tests share (imported by relative path; never shipped).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/** The `code` of the error `f` throws, checking it is an instance of `type`; undefined if it does not throw. */
export function codeOf(type: abstract new (...args: never[]) => Error, f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    return (e as Error & { code: string }).code;
  }
  return undefined;
}

/**
 * Runs the first ```js block of a package's README as a script, with the
 * package's import pointed at its build and `names` (quoted strings in the
 * example, such as shared-memory names) made unique; returns its stdout.
 */
export function runReadmeExample(packageRoot: URL, packageName: string, names: string[]): string {
  const readme = readFileSync(new URL('README.md', packageRoot), 'utf8');
  const example = /```js\n([\s\S]*?)```/.exec(readme)?.[1];
  if (example === undefined) throw new Error('the README has no js example');
  let code = example.replaceAll(`'${packageName}'`, JSON.stringify(new URL('dist/index.js', packageRoot).href));
  for (const n of names) code = code.replaceAll(`'${n}'`, JSON.stringify(`${n}-${process.pid}`));
  // Inside the package, so that the example's other imports resolve from
  // the package's own node_modules, as they would for a user.
  const dir = mkdtempSync(join(fileURLToPath(packageRoot), '.readme-'));
  try {
    const file = join(dir, 'example.mjs');
    writeFileSync(file, code);
    // Bounded: a hung example fails the test instead of hanging the run.
    return execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
