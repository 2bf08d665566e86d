// Encoders and decoders compiled from the protocol's tables, one pair per
// opcode: a client encodes a request and decodes a reply on every call,
// and a loop over a table reads `msg[name]` and writes `out[name]` for
// every kind of message at the same places in the code, which V8 can then
// only look up the slow (megamorphic) way. A function per opcode, with its
// field names written in, reads and builds each message's one shape
// directly. The compiled functions do exactly what protocol.ts's
// interpreting `encode` and `decode` do (same checks, bytes and errors; a
// test holds them to it), and protocol.ts keeps using those where code
// cannot be made from strings (`node --disallow-code-generation-from-strings`).

import type { Field } from './protocol.js';

/** What the compiled functions call (protocol.ts's own helpers). */
export interface CoderHelpers {
  VERSION: number;
  STAT_BYTES: number;
  fieldError(name: string, kind: string, v: unknown): Error;
  bad(message: string): Error;
  stringSize(s: string, kind: 'path' | 'text', name: string): number;
  entriesSize(v: unknown, name: string): number;
  writeString(b: Buffer, at: number, s: string): number;
  writeInt(b: Buffer, at: number, v: number): number;
  writeEntries(b: Buffer, at: number, es: unknown): number;
  viewOf(into: Buffer, size: number): Buffer;
  opened(buf: Uint8Array): Buffer;
  need(length: number, at: number, n: number, name: string): void;
  readInt(b: Buffer, at: number, name: string): number;
  readString(b: Buffer, at: number, kind: 'path' | 'text', name: string): [string, number];
  readEntries(b: Buffer, at: number, name: string): [unknown[], number];
  decodeStat(b: Buffer): Record<string, unknown>;
}

export type Encoder = (msg: Record<string, unknown>, into: Buffer | undefined) => Buffer;
export type Decoder = (buf: Uint8Array) => Record<string, unknown>;

/** The protocol's names are plain identifiers; anything else is not compiled. */
const NAME = /^[A-Za-z][A-Za-z0-9]*$/;

function make<T>(fields: readonly Field[], body: string, helpers: CoderHelpers): T | undefined {
  if (!fields.every(([name]) => NAME.test(name))) return undefined;
  try {
    return new Function('h', body)(helpers) as T;
  } catch {
    // Code generation refused (--disallow-code-generation-from-strings).
    return undefined;
  }
}

/** An encoder for messages of `fields`, or undefined where none can be compiled. */
export function compileEncoder(fields: readonly Field[], helpers: CoderHelpers): Encoder | undefined {
  const check: string[] = [];
  const write: string[] = [];
  fields.forEach(([name, kind], i) => {
    const v = `v${i}`;
    const n = JSON.stringify(name);
    const k = JSON.stringify(kind);
    check.push(`const ${v} = msg[${n}];`);
    switch (kind) {
      case 'u32':
        check.push(`if (typeof ${v} !== 'number' || !Number.isInteger(${v}) || ${v} < 0 || ${v} > 0xffffffff) throw h.fieldError(${n}, ${k}, ${v});`, 'size += 4;');
        write.push(`at = b.writeUInt32LE(${v}, at);`);
        break;
      case 'int':
        check.push(`if (typeof ${v} !== 'number' || !Number.isSafeInteger(${v})) throw h.fieldError(${n}, ${k}, ${v});`, 'size += 8;');
        write.push(`at = h.writeInt(b, at, ${v});`);
        break;
      case 'f64':
        check.push(`if (typeof ${v} !== 'number') throw h.fieldError(${n}, ${k}, ${v});`, 'size += 8;');
        write.push(`at = b.writeDoubleLE(${v}, at);`);
        break;
      case 'path':
      case 'text':
        check.push(`if (typeof ${v} !== 'string') throw h.fieldError(${n}, ${k}, ${v});`, `size += 4 + h.stringSize(${v}, ${k}, ${n});`);
        write.push(`at = h.writeString(b, at, ${v});`);
        break;
      case 'bytes':
        check.push(`if (!(${v} instanceof Uint8Array)) throw h.fieldError(${n}, ${k}, ${v});`, `size += ${v}.byteLength;`);
        write.push(`b.set(${v}, at);`, `at += ${v}.byteLength;`);
        break;
      case 'entries':
        check.push(`size += h.entriesSize(${v}, ${n});`);
        write.push(`at = h.writeEntries(b, at, ${v});`);
        break;
    }
  });
  const body = [
    'return function encode(msg, into) {',
    'let size = 1;',
    ...check,
    'const b = into !== undefined && into.length >= size ? into : Buffer.allocUnsafe(size);',
    'b[0] = h.VERSION;',
    'let at = 1;',
    ...write,
    'return b === into ? h.viewOf(into, size) : b;',
    '};',
  ].join('\n');
  return make<Encoder>(fields, body, helpers);
}

/**
 * A decoder for messages of `fields`, or undefined where none can be
 * compiled. `stat` marks the stat record, which has a fixed-offset reader.
 */
export function compileDecoder(fields: readonly Field[], stat: boolean, helpers: CoderHelpers): Decoder | undefined {
  const read: string[] = [];
  const props: string[] = [];
  fields.forEach(([name, kind], i) => {
    const v = `v${i}`;
    const n = JSON.stringify(name);
    switch (kind) {
      case 'u32':
        read.push(`h.need(b.length, at, 4, ${n});`, `const ${v} = b.readUInt32LE(at);`, 'at += 4;');
        break;
      case 'int':
        read.push(`h.need(b.length, at, 8, ${n});`, `const ${v} = h.readInt(b, at, ${n});`, 'at += 8;');
        break;
      case 'f64':
        read.push(`h.need(b.length, at, 8, ${n});`, `const ${v} = b.readDoubleLE(at);`, 'at += 8;');
        break;
      case 'path':
      case 'text':
        read.push(`const [${v}, next${i}] = h.readString(b, at, ${JSON.stringify(kind)}, ${n});`, `at = next${i};`);
        break;
      case 'bytes':
        // A view, not a copy, as protocol.ts's decode.
        read.push(`const ${v} = b.subarray(at);`, 'at = b.length;');
        break;
      case 'entries':
        read.push(`const [${v}, next${i}] = h.readEntries(b, at, ${n});`, `at = next${i};`);
        break;
    }
    props.push(`${name}: ${v}`);
  });
  const body = [
    'return function decode(buf) {',
    'const b = h.opened(buf);',
    stat ? 'if (b.length === h.STAT_BYTES) return h.decodeStat(b);' : '',
    'let at = 1;',
    ...read,
    'if (at !== b.length) throw h.bad(`${b.length - at} bytes trail the message`);',
    `return { ${props.join(', ')} };`,
    '};',
  ].join('\n');
  return make<Decoder>(fields, body, helpers);
}
