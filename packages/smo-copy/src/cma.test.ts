import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { addressOf, cmaRead, cmaWrite, SmoCopyError } from './index.js';
import { codeOf as codeOfType } from '../../../tooling/test-helpers.js';

const peerScript = fileURLToPath(new URL('./fixtures/peer.mjs', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

function peer(args: string[]): ChildProcess {
  const child = fork(peerScript, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  return child;
}

async function message<T>(child: ChildProcess): Promise<T> {
  const [msg] = (await once(child, 'message')) as [T];
  return msg;
}

const codeOf = (f: () => unknown) => codeOfType(SmoCopyError, f);

describe('CMA', () => {
  it('reads and writes another process memory in one copy', async () => {
    const child = peer(['hold']);
    const { pid, address } = await message<{ pid: number; address: string }>(child);
    const got = Buffer.alloc(1 << 20);
    expect(cmaRead(pid, BigInt(address), got)).toBe(1 << 20);
    expect(got.every((b, i) => b === i % 251)).toBe(true);
    // Part of it, into the middle of a local buffer.
    const part = Buffer.alloc(100, 0);
    cmaRead(pid, BigInt(address) + 10n, part, { offset: 50, length: 20 });
    expect([...part.subarray(50, 70)]).toEqual([...got.subarray(10, 30)]);
    expect(part[49]).toBe(0);
    expect(part[70]).toBe(0);
    expect(cmaWrite(pid, BigInt(address), Buffer.alloc(1 << 20, 0x77))).toBe(1 << 20);
    child.send('check');
    expect(await message<{ written: boolean }>(child)).toEqual({ written: true });
  });

  it('reports a bad address, a dead process and bad arguments with codes', async () => {
    const mine = Buffer.alloc(64);
    const e = (() => {
      try {
        cmaRead(process.pid, 16n, mine);
      } catch (err) {
        return err as SmoCopyError;
      }
    })();
    expect(e?.code).toBe('ERR_SMO_CMA_BAD_ADDRESS');
    expect(e?.errno).toBe(14);
    expect(e?.syscall).toBe('process_vm_readv');
    const child = peer(['hold']);
    const { pid } = await message<{ pid: number }>(child);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(codeOf(() => cmaRead(pid, addressOf(mine), mine))).toBe('ERR_SMO_CMA_NO_PROCESS');
    expect(codeOf(() => cmaRead(0, 4096n, mine))).toBe('ERR_SMO_INVALID_ARGUMENT');
    expect(codeOf(() => cmaRead(process.pid, 4096 as unknown as bigint, mine))).toBe('ERR_SMO_INVALID_ARGUMENT');
    expect(codeOf(() => cmaRead(process.pid, -1n, mine))).toBe('ERR_SMO_INVALID_ARGUMENT');
    expect(codeOf(() => cmaRead(process.pid, 2n ** 64n, mine))).toBe('ERR_SMO_INVALID_ARGUMENT');
    expect(codeOf(() => cmaRead(process.pid, addressOf(mine), mine, { offset: 10, length: 60 }))).toBe('ERR_SMO_OUT_OF_RANGE');
  });

  it('is refused with ERR_SMO_CMA_PERMISSION when ptrace rules forbid it, and says why', async () => {
    const secret = Buffer.alloc(4096, 5);
    // As root, a child running as nobody reads us; otherwise read pid 1 (root's).
    const asRoot = process.getuid?.() === 0;
    const target = asRoot ? process.pid : 1;
    const child = peer(['read', String(target), addressOf(secret).toString(), '4096', asRoot ? 'drop' : 'stay']);
    const reply = await message<{ code?: string; message?: string }>(child);
    expect(reply.code).toBe('ERR_SMO_CMA_PERMISSION');
    expect(reply.message).toMatch(/ptrace/);
  });
});
