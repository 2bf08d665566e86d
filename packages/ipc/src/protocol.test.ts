import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IpcError } from './errors.js';
import { decodeRequest, decodeResult, describe as fieldsOf, encodeRequest, encodeResult, interpreted, Opcode, PROTOCOL_VERSION, type Message } from './protocol.js';
import { codeOf as codeOfType } from '../../../tooling/test-helpers.js';

const pathArb = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
  .filter((s) => !s.includes('\0') && Buffer.byteLength(s) <= 4096);
const kindArb: Record<string, fc.Arbitrary<unknown>> = {
  u32: fc.integer({ min: 0, max: 0xffffffff }),
  int: fc.maxSafeInteger(),
  f64: fc.double({ noNaN: true }),
  path: pathArb,
  text: fc.oneof(fc.constant(''), pathArb),
  bytes: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  entries: fc.array(fc.record({ type: fc.integer({ min: 0, max: 255 }), name: pathArb }), { maxLength: 20 }),
};

function messageArb(fields: readonly (readonly [string, string])[]): fc.Arbitrary<Message> {
  return fc.record(Object.fromEntries(fields.map(([name, kind]) => [name, kindArb[kind] as fc.Arbitrary<unknown>]))) as fc.Arbitrary<Message>;
}

const opcodes = Object.values(Opcode);

const codeOf = (f: () => unknown) => codeOfType(IpcError, f);

describe('protocol', () => {
  it('covers every operation of the libservice contract', () => {
    expect(opcodes).toHaveLength(27);
    expect(new Set(opcodes).size).toBe(27);
  });

  for (const [name, op] of Object.entries(Opcode)) {
    it(`round-trips ${name} requests and results exactly`, () => {
      const { request, result } = fieldsOf(op);
      fc.assert(
        fc.property(messageArb(request), messageArb(result), (req, res) => {
          expect(decodeRequest(op, encodeRequest(op, req))).toEqual(req);
          expect(decodeResult(op, encodeResult(op, res))).toEqual(res);
        }),
        { numRuns: 60 },
      );
    });
  }

  it('encodes a request into a reused buffer when it fits, the same bytes as a fresh one', () => {
    // Two buffers taken in turn: the views handed back are of the buffer
    // given, whichever was used before.
    const intos = [Buffer.alloc(256, 0xee), Buffer.alloc(300, 0xdd)];
    fc.assert(
      fc.property(fc.constantFrom(...opcodes), fc.integer({ min: 0, max: 1 << 30 }), (op, seed) => {
        const into = intos[seed % 2]!;
        const req = fc.sample(messageArb(fieldsOf(op).request), { numRuns: 1, seed })[0]!;
        const fresh = encodeRequest(op, req);
        const reused = encodeRequest(op, req, into);
        expect(Buffer.compare(reused, fresh)).toBe(0);
        if (fresh.length <= into.length) expect(reused.buffer === into.buffer && reused.byteOffset === into.byteOffset).toBe(true);
        else expect(reused.buffer).not.toBe(into.buffer);
        // A bad message writes nothing into the buffer it is refused for.
        const before = Buffer.from(into);
        expect(codeOf(() => encodeRequest(op, { ...req, [fieldsOf(op).request[0]![0]]: Symbol('bad') } as unknown as Message, into))).toBe('ERR_IPC_BAD_MESSAGE');
        expect(Buffer.compare(into, before)).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('decodes stat records from views at any offset of any buffer', () => {
    const rec = { dev: 2049, ino: 2 ** 40 + 3, mode: 0o100644, nlink: 1, uid: 1000, gid: 1000, rdev: 0, size: 2 ** 33, blksize: 4096, blocks: 8, atimeMs: 1.5, mtimeMs: -2.25, ctimeMs: 1e12, birthtimeMs: 0 };
    const bytes = encodeResult(Opcode.Stat, rec);
    for (const at of [0, 1, 3, 7, 100]) {
      const big = Buffer.alloc(at + bytes.length + 5, 0xff);
      bytes.copy(big, at);
      expect(decodeResult(Opcode.Stat, big.subarray(at, at + bytes.length))).toEqual(rec);
      expect(decodeResult(Opcode.Stat, new Uint8Array(big.buffer, big.byteOffset + at, bytes.length))).toEqual(rec);
    }
    // Another buffer after one was decoded: its own bytes.
    const other = encodeResult(Opcode.Stat, { ...rec, size: 7 });
    expect(decodeResult(Opcode.Stat, other).size).toBe(7);
    const unsafe = Buffer.from(bytes);
    unsafe.writeUInt32LE(0x7fffffff, 45 + 4);
    expect(codeOf(() => decodeResult(Opcode.Stat, unsafe))).toBe('ERR_IPC_BAD_MESSAGE');
  });

  it('decodes hostile bytes strictly: a coded error or a message that re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(fc.constantFrom(...opcodes), fc.uint8Array({ maxLength: 200 }), fc.boolean(), (op, raw, asResult) => {
        const bytes = Buffer.from([PROTOCOL_VERSION, ...raw]); // mostly the right version, so decoding gets past it
        const decodeFn = asResult ? decodeResult : decodeRequest;
        const encodeFn = asResult ? encodeResult : encodeRequest;
        let msg: Message;
        try {
          msg = decodeFn(op, bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(IpcError);
          expect((e as IpcError).code).toBe('ERR_IPC_BAD_MESSAGE');
          return;
        }
        // NaN payloads are the one non-canonical form: compare as decoded.
        expect(decodeFn(op, encodeFn(op, msg))).toEqual(msg);
      }),
      { numRuns: 3000 },
    );
  });

  it('compiled coders do what the interpreting ones do: same bytes, same messages, same errors', () => {
    const { encode, decode, REQUESTS, RESULTS } = interpreted;
    /** A call's outcome: its value, or its error's code and message. */
    const outcome = (f: () => unknown) => {
      try {
        return { value: f() };
      } catch (e) {
        return { code: (e as IpcError).code, message: (e as Error).message };
      }
    };
    // Messages as the tables say, then with one field of a wrong kind.
    const wrong = [undefined, null, -1, 1.5, 2 ** 53, 'x', '', Buffer.alloc(1), [], [{ type: 256, name: 'a' }], {}, NaN];
    fc.assert(
      fc.property(fc.constantFrom(...opcodes), fc.boolean(), fc.integer({ min: 0, max: 1 << 30 }), fc.nat(), (op, asResult, seed, pick) => {
        const fields = (asResult ? RESULTS : REQUESTS)[op];
        const msg = fc.sample(messageArb(fields), { numRuns: 1, seed })[0]!;
        const variants: Message[] = [msg];
        if (fields.length > 0) variants.push({ ...msg, [fields[pick % fields.length]![0]]: wrong[pick % wrong.length] } as unknown as Message);
        for (const m of variants) {
          const compiled = outcome(() => (asResult ? encodeResult(op, m) : encodeRequest(op, m)));
          expect(compiled).toEqual(outcome(() => encode(fields, m)));
          if ('value' in compiled) expect(asResult ? decodeResult(op, compiled.value as Buffer) : decodeRequest(op, compiled.value as Buffer)).toEqual(decode(fields, compiled.value as Buffer));
        }
      }),
      { numRuns: 2000 },
    );
    // Hostile bytes: the same message or the same error.
    fc.assert(
      fc.property(fc.constantFrom(...opcodes), fc.uint8Array({ maxLength: 200 }), fc.boolean(), (op, raw, asResult) => {
        const bytes = Buffer.from([PROTOCOL_VERSION, ...raw]);
        const fields = (asResult ? RESULTS : REQUESTS)[op];
        expect(outcome(() => (asResult ? decodeResult(op, bytes) : decodeRequest(op, bytes)))).toEqual(outcome(() => decode(fields, bytes)));
      }),
      { numRuns: 3000 },
    );
  });

  it('interprets its tables where code cannot be made from strings', () => {
    const samples = opcodes.map((op, i) => {
      const { request, result } = fieldsOf(op);
      const [req] = fc.sample(messageArb(request), { numRuns: 1, seed: i });
      const [res] = fc.sample(messageArb(result), { numRuns: 1, seed: i + 100 });
      return { op, request: encodeRequest(op, req!).toString('hex'), result: encodeResult(op, res!).toString('hex') };
    });
    const script = fileURLToPath(new URL('./fixtures/no-codegen.mjs', import.meta.url));
    const run = spawnSync(process.execPath, ['--disallow-code-generation-from-strings', script, JSON.stringify(samples)], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const { refused, out } = JSON.parse(run.stdout) as { refused: boolean; out: { request: string; result: string }[] };
    expect(refused).toBe(true);
    expect(out).toEqual(samples.map(({ request, result }) => ({ request, result })));
  });

  it('refuses truncation, trailing bytes, other versions, bad strings and unknown opcodes', () => {
    const good = encodeRequest(Opcode.Rename, { from: '/a', to: '/b', flags: 0 });
    for (let cut = 0; cut < good.length; cut++) {
      expect(codeOf(() => decodeRequest(Opcode.Rename, good.subarray(0, cut)))).toBe('ERR_IPC_BAD_MESSAGE');
    }
    expect(codeOf(() => decodeRequest(Opcode.Rename, Buffer.concat([good, Buffer.from([0])])))).toBe('ERR_IPC_BAD_MESSAGE');
    expect(codeOf(() => decodeRequest(Opcode.Rename, Buffer.from([PROTOCOL_VERSION + 1, ...good.subarray(1)])))).toBe('ERR_IPC_BAD_MESSAGE');
    // Invalid UTF-8 and a NUL inside a path.
    const badUtf8 = Buffer.from([PROTOCOL_VERSION, 2, 0, 0, 0, 0xc3, 0x28]);
    expect(codeOf(() => decodeRequest(Opcode.Stat, badUtf8))).toBe('ERR_IPC_BAD_MESSAGE');
    expect(codeOf(() => decodeRequest(Opcode.Stat, Buffer.from([PROTOCOL_VERSION, 2, 0, 0, 0, 0x61, 0])))).toBe('ERR_IPC_BAD_MESSAGE');
    expect(codeOf(() => encodeRequest(Opcode.Stat, { path: 'a\0b' }))).toBe('ERR_IPC_BAD_MESSAGE');
    expect(codeOf(() => encodeRequest(Opcode.Stat, { path: '' }))).toBe('ERR_IPC_BAD_MESSAGE');
    expect(codeOf(() => encodeRequest(Opcode.Stat, { path: 'x'.repeat(4097) }))).toBe('ERR_IPC_BAD_MESSAGE');
    // A huge length or entry count is refused before anything is allocated.
    expect(codeOf(() => decodeRequest(Opcode.Stat, Buffer.from([PROTOCOL_VERSION, 0xff, 0xff, 0xff, 0xff])))).toBe('ERR_IPC_BAD_MESSAGE');
    expect(codeOf(() => decodeResult(Opcode.Readdir, Buffer.from([PROTOCOL_VERSION, 0xff, 0xff, 0xff, 0x7f])))).toBe('ERR_IPC_BAD_MESSAGE');
    // Integers beyond JavaScript's safe range.
    const big = Buffer.alloc(9);
    big[0] = PROTOCOL_VERSION;
    big.writeBigInt64LE(2n ** 60n, 1);
    expect(codeOf(() => decodeRequest(Opcode.Close, big))).toBe('ERR_IPC_BAD_MESSAGE');
    for (const edge of [2n ** 53n, -(2n ** 53n), 2n ** 63n - 1n, -(2n ** 63n)]) {
      big.writeBigInt64LE(edge, 1);
      expect(codeOf(() => decodeRequest(Opcode.Close, big))).toBe('ERR_IPC_BAD_MESSAGE');
    }
    // The safe edges, both signs, and the 32-bit boundaries are exact (checked against BigInt's encoding).
    for (const v of [0, 1, -1, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), 2 ** 31, -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]) {
      const bytes = encodeRequest(Opcode.Close, { fd: v });
      big.writeBigInt64LE(BigInt(v), 1);
      expect(bytes.equals(big)).toBe(true);
      expect(decodeRequest(Opcode.Close, bytes).fd).toBe(v);
    }
    expect(codeOf(() => decodeRequest(99, Buffer.from([1])))).toBe('ERR_IPC_BAD_MESSAGE');
    expect(codeOf(() => encodeRequest(Opcode.Read, { fd: 1.5, length: 1, position: 0 }))).toBe('ERR_IPC_BAD_MESSAGE');
  });
});
