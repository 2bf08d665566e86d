import { fork } from 'node:child_process';
import { once } from 'node:events';
import { constants } from 'node:buffer';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { copy, createSharedBuffer, openSharedBuffer, unlinkSharedBuffer, SmoCopyError } from './index.js';
import { codeOf as codeOfType } from '../../../tooling/test-helpers.js';

const peerScript = fileURLToPath(new URL('./fixtures/peer.mjs', import.meta.url));
const names: string[] = [];
function uniqueName(tag: string): string {
  const n = `smo-js-${tag}-${process.pid}-${names.length}`;
  names.push(n);
  return n;
}
afterEach(() => {
  for (const n of names.splice(0)) {
    try {
      unlinkSharedBuffer(n);
    } catch {
      /* already unlinked by the test */
    }
  }
});

const codeOf = (f: () => unknown) => codeOfType(SmoCopyError, f);

describe('shared buffers', () => {
  it('are one memory for every mapping, created 0600 and exclusive', () => {
    const name = uniqueName('basic');
    const a = createSharedBuffer(name, 1 << 20);
    expect(a.length).toBe(1 << 20);
    expect(a.every((x) => x === 0)).toBe(true);
    expect(statSync(`/dev/shm/${name}`).mode & 0o777).toBe(0o600);
    const b = openSharedBuffer(name);
    copy(a, Buffer.alloc(1 << 20, 9), { method: 'smo' });
    expect(b.every((x) => x === 9)).toBe(true);
    expect(codeOf(() => createSharedBuffer(name, 10))).toBe('ERR_SMO_EXISTS');
    unlinkSharedBuffer(name);
    // Mappings outlive the name.
    expect(b[100]).toBe(9);
    expect(codeOf(() => openSharedBuffer(name))).toBe('ERR_SMO_NOT_FOUND');
    expect(codeOf(() => unlinkSharedBuffer(name))).toBe('ERR_SMO_NOT_FOUND');
  });

  it.runIf(process.getuid?.() === 0)('cannot be opened by another user', async () => {
    const name = uniqueName('foreign');
    createSharedBuffer(name, 4096);
    const child = fork(peerScript, ['shm-foreign', name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    expect((await once(child, 'message'))[0]).toEqual({ code: 'ERR_SMO_ACCESS_DENIED' });
  });

  it('refuses bad names and sizes with codes', () => {
    expect(codeOf(() => createSharedBuffer('a/b', 10))).toBe('ERR_SMO_INVALID_ARGUMENT');
    expect(codeOf(() => createSharedBuffer('', 10))).toBe('ERR_SMO_INVALID_ARGUMENT');
    expect(codeOf(() => createSharedBuffer(uniqueName('size'), 0))).toBe('ERR_SMO_INVALID_ARGUMENT');
    expect(codeOf(() => createSharedBuffer(uniqueName('size'), 1.5))).toBe('ERR_SMO_INVALID_ARGUMENT');
    expect(codeOf(() => createSharedBuffer(uniqueName('size'), constants.MAX_LENGTH + 1))).toBe('ERR_SMO_INVALID_ARGUMENT');
    expect(codeOf(() => openSharedBuffer(42 as unknown as string))).toBe('ERR_SMO_INVALID_ARGUMENT');
  });

  it('are seen by another process and by a worker thread that open them by name', async () => {
    const name = uniqueName('peers');
    const shm = createSharedBuffer(name, 64 * 1024);
    shm.fill(1);
    const child = fork(peerScript, ['shm', name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    expect((await once(child, 'message'))[0]).toEqual({ done: true });
    expect(shm.every((x) => x === 2)).toBe(true);
    const worker = new Worker(
      `const { openSharedBuffer } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
       const b = openSharedBuffer(${JSON.stringify(name)}); b.fill(3, 0, 1000);
       (await import('node:worker_threads')).parentPort.postMessage('ok');`,
      { eval: true, type: 'module' } as never,
    );
    expect((await once(worker, 'message'))[0]).toBe('ok');
    await worker.terminate();
    expect(shm[999]).toBe(3);
    expect(shm[1000]).toBe(2);
  });
});
