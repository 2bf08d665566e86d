// The wire protocol between iolib and an I/O service: one opcode per
// operation of the libservice contract, requests and results encoded by one
// table, and strict decoding (a service decodes bytes a client wrote: every
// length is checked, strings must be valid UTF-8, nothing may trail).
//
// Encoding, little-endian: a version byte, then each field in table order.
// u32: 4 bytes; int: a signed 64-bit integer within JavaScript's safe range;
// f64: 8 bytes; path: u32 length + UTF-8 (1..4096 bytes, no NUL); text: the
// same but may be empty (a symlink target); bytes: the rest of the message
// (decoded as a view of it, not a copy);
// entries: u32 count, then per entry a type byte and a path.
import { compileDecoder, compileEncoder } from './coders.js';
import type { CoderHelpers, Decoder, Encoder } from './coders.js';
import { IpcError, IpcErrorCode } from './errors.js';
import { StartViews } from './views.js';

/** Bumped on any change to the tables below; a mismatch is refused. */
export const PROTOCOL_VERSION = 2;

/** Every operation of the libservice contract. */
export const Opcode = {
  Open: 1,
  Close: 2,
  Read: 3,
  Write: 4,
  Stat: 5,
  Lstat: 6,
  Fstat: 7,
  Readdir: 8,
  Mkdir: 9,
  Rmdir: 10,
  Unlink: 11,
  Rename: 12,
  Link: 13,
  Symlink: 14,
  Readlink: 15,
  Truncate: 16,
  Ftruncate: 17,
  Fsync: 18,
  Fdatasync: 19,
  Chmod: 20,
  Chown: 21,
  Utimes: 22,
  Access: 23,
  Statfs: 24,
  Fchmod: 25,
  Fchown: 26,
  Futimes: 27,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

type Kind = 'u32' | 'int' | 'f64' | 'path' | 'text' | 'bytes' | 'entries';
export type Field = readonly [name: string, kind: Kind];

const STAT: Field[] = [
  ['dev', 'int'], ['ino', 'int'], ['mode', 'u32'], ['nlink', 'int'], ['uid', 'u32'], ['gid', 'u32'], ['rdev', 'int'],
  ['size', 'int'], ['blksize', 'int'], ['blocks', 'int'],
  ['atimeMs', 'f64'], ['mtimeMs', 'f64'], ['ctimeMs', 'f64'], ['birthtimeMs', 'f64'],
];

/** Request fields per opcode. `fd` is a handle the service gave back from Open. */
const REQUESTS: Record<Opcode, readonly Field[]> = {
  [Opcode.Open]: [['path', 'path'], ['flags', 'u32'], ['mode', 'u32']],
  [Opcode.Close]: [['fd', 'int']],
  [Opcode.Read]: [['fd', 'int'], ['length', 'u32'], ['position', 'int']],
  [Opcode.Write]: [['fd', 'int'], ['position', 'int'], ['data', 'bytes']],
  [Opcode.Stat]: [['path', 'path']],
  [Opcode.Lstat]: [['path', 'path']],
  [Opcode.Fstat]: [['fd', 'int']],
  [Opcode.Readdir]: [['path', 'path']],
  [Opcode.Mkdir]: [['path', 'path'], ['mode', 'u32']],
  [Opcode.Rmdir]: [['path', 'path']],
  [Opcode.Unlink]: [['path', 'path']],
  [Opcode.Rename]: [['from', 'path'], ['to', 'path'], ['flags', 'u32']],
  [Opcode.Link]: [['existing', 'path'], ['path', 'path']],
  [Opcode.Symlink]: [['target', 'text'], ['path', 'path']],
  [Opcode.Readlink]: [['path', 'path']],
  [Opcode.Truncate]: [['path', 'path'], ['length', 'int']],
  [Opcode.Ftruncate]: [['fd', 'int'], ['length', 'int']],
  [Opcode.Fsync]: [['fd', 'int']],
  [Opcode.Fdatasync]: [['fd', 'int']],
  [Opcode.Chmod]: [['path', 'path'], ['mode', 'u32']],
  [Opcode.Chown]: [['path', 'path'], ['uid', 'u32'], ['gid', 'u32']],
  [Opcode.Utimes]: [['path', 'path'], ['atimeMs', 'f64'], ['mtimeMs', 'f64']],
  [Opcode.Access]: [['path', 'path'], ['mode', 'u32']],
  [Opcode.Statfs]: [['path', 'path']],
  [Opcode.Fchmod]: [['fd', 'int'], ['mode', 'u32']],
  [Opcode.Fchown]: [['fd', 'int'], ['uid', 'u32'], ['gid', 'u32']],
  [Opcode.Futimes]: [['fd', 'int'], ['atimeMs', 'f64'], ['mtimeMs', 'f64']],
};

/** Result fields per opcode, for a success (status >= 0); failures carry no body. */
const RESULTS: Record<Opcode, readonly Field[]> = {
  [Opcode.Open]: [['fd', 'int']],
  [Opcode.Close]: [],
  [Opcode.Read]: [['data', 'bytes']],
  [Opcode.Write]: [['written', 'int']],
  [Opcode.Stat]: STAT,
  [Opcode.Lstat]: STAT,
  [Opcode.Fstat]: STAT,
  [Opcode.Readdir]: [['entries', 'entries']],
  [Opcode.Mkdir]: [],
  [Opcode.Rmdir]: [],
  [Opcode.Unlink]: [],
  [Opcode.Rename]: [],
  [Opcode.Link]: [],
  [Opcode.Symlink]: [],
  [Opcode.Readlink]: [['target', 'text']],
  [Opcode.Truncate]: [],
  [Opcode.Ftruncate]: [],
  [Opcode.Fsync]: [],
  [Opcode.Fdatasync]: [],
  [Opcode.Chmod]: [],
  [Opcode.Chown]: [],
  [Opcode.Utimes]: [],
  [Opcode.Access]: [],
  [Opcode.Statfs]: [['bsize', 'int'], ['blocks', 'int'], ['bfree', 'int'], ['bavail', 'int'], ['files', 'int'], ['ffree', 'int']],
  [Opcode.Fchmod]: [],
  [Opcode.Fchown]: [],
  [Opcode.Futimes]: [],
};

/** A directory entry: its name and a type byte (the libservice contract's). */
export interface Entry {
  name: string;
  type: number;
}

/** A decoded message: field name to value (number, string, Buffer or Entry[]). */
export type Message = Record<string, number | string | Buffer | Entry[]>;

export const MAX_PATH = 4096;
const MAX_ENTRIES = 1 << 20;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function bad(message: string): IpcError {
  return new IpcError(IpcErrorCode.BadMessage, message);
}

function table(tables: Record<Opcode, readonly Field[]>, opcode: number): readonly Field[] {
  const fields = Object.hasOwn(tables, opcode) ? tables[opcode as Opcode] : undefined;
  if (!fields) throw bad(`unknown opcode ${opcode}`);
  return fields;
}

function fieldError(name: string, kind: Kind, v: unknown): IpcError {
  return bad(`field ${name} must be a ${kind}, got ${typeof v}`);
}

/**
 * Encodes `msg` as `fields` say, into `into` when it has room (a view of
 * its start is returned), else into a new Buffer. Two passes: check every
 * field and add up the size, then write into one buffer (no small buffers
 * to join: a listing of 1,000 entries is one allocation, not 2,000).
 * Index loops and no closures: a client encodes on every call.
 */
function encode(fields: readonly Field[], msg: Message, into?: Buffer): Buffer {
  let size = 1;
  for (let i = 0; i < fields.length; i++) {
    const [name, kind] = fields[i]!;
    const v = msg[name];
    switch (kind) {
      case 'u32':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw fieldError(name, kind, v);
        size += 4;
        break;
      case 'int':
        if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw fieldError(name, kind, v);
        size += 8;
        break;
      case 'f64':
        if (typeof v !== 'number') throw fieldError(name, kind, v);
        size += 8;
        break;
      case 'path':
      case 'text':
        if (typeof v !== 'string') throw fieldError(name, kind, v);
        size += 4 + stringSize(v, kind, name);
        break;
      case 'bytes':
        if (!(v instanceof Uint8Array)) throw fieldError(name, kind, v);
        size += v.byteLength;
        break;
      case 'entries':
        size += entriesSize(v, name);
        break;
    }
  }
  const b = into !== undefined && into.length >= size ? into : Buffer.allocUnsafe(size);
  b[0] = PROTOCOL_VERSION;
  let at = 1;
  for (let i = 0; i < fields.length; i++) {
    const [name, kind] = fields[i]!;
    const v = msg[name];
    switch (kind) {
      case 'u32':
        at = b.writeUInt32LE(v as number, at);
        break;
      case 'int':
        at = writeInt(b, at, v as number);
        break;
      case 'f64':
        at = b.writeDoubleLE(v as number, at);
        break;
      case 'path':
      case 'text':
        at = writeString(b, at, v as string);
        break;
      case 'bytes': {
        const u = v as Uint8Array;
        b.set(u, at);
        at += u.byteLength;
        break;
      }
      case 'entries':
        at = writeEntries(b, at, v as Entry[]);
        break;
    }
  }
  return b === into ? viewOf(into, size) : b;
}

/** The encoded size of an `entries` field, checked. */
function entriesSize(v: unknown, name: string): number {
  if (!Array.isArray(v) || v.length > MAX_ENTRIES) throw fieldError(name, 'entries', v);
  let size = 4;
  for (const e of v as Entry[]) {
    if (!Number.isInteger(e.type) || e.type < 0 || e.type > 255) throw bad(`entry ${e.name}: type must be a byte`);
    if (typeof e.name !== 'string') throw bad('entry name must be a string');
    size += 5 + stringSize(e.name, 'path', 'entry name');
  }
  return size;
}

function writeEntries(b: Buffer, at: number, es: Entry[]): number {
  at = b.writeUInt32LE(es.length, at);
  for (const e of es) {
    b[at++] = e.type;
    at = writeString(b, at, e.name);
  }
  return at;
}

/** An `int` at `at`, as two 32-bit halves (two's complement): exact for safe integers, no BigInt. */
function writeInt(b: Buffer, at: number, v: number): number {
  const hi = Math.floor(v / 4294967296);
  b.writeUInt32LE(v - hi * 4294967296, at);
  return b.writeInt32LE(hi, at + 4);
}

/** Views of the last buffer encoded into (a client's, reused for every sync request). */
let intoViews: StartViews | undefined;

/** The first `size` bytes of `into`. */
function viewOf(into: Buffer, size: number): Buffer {
  if (intoViews?.buffer !== into) intoViews = new StartViews(into);
  return intoViews.of(size);
}

/** A string field (u32 length, UTF-8) at `at`; where the next field starts. */
function writeString(b: Buffer, at: number, s: string): number {
  const n = b.write(s, at + 4, 'utf8');
  b.writeUInt32LE(n, at);
  return at + 4 + n;
}

/** The UTF-8 size of a string field, checked: 1..MAX_PATH bytes (0.. for text), no NUL. */
function stringSize(s: string, kind: 'path' | 'text', name: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  if (n > MAX_PATH || (kind === 'path' && n === 0)) throw bad(`${name} must be ${kind === 'path' ? '1' : '0'}..${MAX_PATH} bytes, got ${n}`);
  if (s.includes('\0')) throw bad(`${name} contains a NUL byte`);
  return n;
}

/** Throws unless `n` more bytes follow `at` in a message of `length` bytes. */
function need(length: number, at: number, n: number, name: string): void {
  if (at + n > length) throw bad(`message ends inside field ${name}`);
}

/** A string field at `at`: its value and where the next field starts. */
function readString(b: Buffer, at: number, kind: 'path' | 'text', name: string): [string, number] {
  need(b.length, at, 4, name);
  const len = b.readUInt32LE(at);
  at += 4;
  need(b.length, at, len, name);
  const end = at + len;
  if (len > MAX_PATH || (kind === 'path' && len === 0)) throw bad(`${name} must be ${kind === 'path' ? '1' : '0'}..${MAX_PATH} bytes, got ${len}`);
  // One pass for NUL and ASCII: names are short and mostly ASCII, which
  // needs no UTF-8 decoding (a listing decodes hundreds of them).
  let ascii = true;
  for (let i = at; i < end; i++) {
    const c = b[i]!;
    if (c === 0) throw bad(`${name} contains a NUL byte`);
    if (c >= 0x80) ascii = false;
  }
  if (ascii) return [b.toString('latin1', at, end), end];
  try {
    return [utf8.decode(b.subarray(at, end)), end];
  } catch {
    throw bad(`${name} is not valid UTF-8`);
  }
}

/** Bytes of an encoded stat record: the version, 7 ints, 3 u32s, 4 f64s. */
const STAT_BYTES = 1 + 7 * 8 + 3 * 4 + 4 * 8;

/** `n`, an `int` read as two 32-bit halves, if it is in the safe range. */
function safeInt(n: number, name: string): number {
  // Beyond the safe range the sum rounds, and is not a safe integer either.
  if (!Number.isSafeInteger(n)) throw bad(`${name} is out of the safe integer range`);
  return n;
}

/** An `int` at `at` (checked to be in the safe range). */
function readInt(b: Buffer, at: number, name: string): number {
  return safeInt(b.readInt32LE(at + 4) * 4294967296 + b.readUInt32LE(at), name);
}

/** The last Buffer a stat record was decoded from, its memory, and a DataView of that. */
let statFrom: Buffer | undefined;
let statBuffer: ArrayBufferLike | undefined;
let statView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

/**
 * A stat record at its fixed offsets, as one object literal read through a
 * DataView: an application's every stat decodes one. Built field by field
 * under computed names it cost four times as much, and Buffer's own
 * readers (bounds checks and byte-wise floats in JavaScript) five times a
 * DataView's, which the compiler inlines. The view is kept while replies
 * come in the same buffer (a client's reused reply buffer).
 */
function decodeStat(b: Buffer): Message {
  // The same Buffer again (a client's reply view): no `.buffer`, a call
  // into the runtime.
  if (b !== statFrom) {
    statFrom = b;
    if (b.buffer !== statBuffer) {
      statBuffer = b.buffer;
      statView = new DataView(b.buffer);
    }
  }
  const v = statView;
  const o = b.byteOffset;
  const int = (at: number, name: string): number => safeInt(v.getInt32(o + at + 4, true) * 4294967296 + v.getUint32(o + at, true), name);
  return {
    dev: int(1, 'dev'),
    ino: int(9, 'ino'),
    mode: v.getUint32(o + 17, true),
    nlink: int(21, 'nlink'),
    uid: v.getUint32(o + 29, true),
    gid: v.getUint32(o + 33, true),
    rdev: int(37, 'rdev'),
    size: int(45, 'size'),
    blksize: int(53, 'blksize'),
    blocks: int(61, 'blocks'),
    atimeMs: v.getFloat64(o + 69, true),
    mtimeMs: v.getFloat64(o + 77, true),
    ctimeMs: v.getFloat64(o + 85, true),
    birthtimeMs: v.getFloat64(o + 93, true),
  };
}

/** An `entries` field at `at`: its entries and where the next field starts. */
function readEntries(b: Buffer, at: number, name: string): [Entry[], number] {
  need(b.length, at, 4, name);
  const count = b.readUInt32LE(at);
  at += 4;
  // Each entry takes at least 6 bytes: refuse counts the message cannot hold.
  if (count > MAX_ENTRIES || count * 6 > b.length - at) throw bad(`${name}: ${count} entries cannot fit`);
  const entries: Entry[] = [];
  for (let e = 0; e < count; e++) {
    need(b.length, at, 1, name);
    const type = b[at] as number;
    const [entryName, next] = readString(b, at + 1, 'path', 'entry name');
    entries.push({ type, name: entryName });
    at = next;
  }
  return [entries, at];
}

/** A message's bytes as a Buffer, its version checked. */
function opened(buf: Uint8Array): Buffer {
  const b = buf instanceof Buffer ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 1) throw bad('empty message');
  if (b[0] !== PROTOCOL_VERSION) throw bad(`protocol version ${b[0]}; this side speaks ${PROTOCOL_VERSION}`);
  return b;
}

function decode(fields: readonly Field[], buf: Uint8Array): Message {
  const b = opened(buf);
  if (fields === STAT && b.length === STAT_BYTES) return decodeStat(b);
  let at = 1;
  const out: Message = {};
  for (let i = 0; i < fields.length; i++) {
    const [name, kind] = fields[i]!;
    switch (kind) {
      case 'u32':
        need(b.length, at, 4, name);
        out[name] = b.readUInt32LE(at);
        at += 4;
        break;
      case 'int':
        need(b.length, at, 8, name);
        out[name] = readInt(b, at, name);
        at += 8;
        break;
      case 'f64':
        need(b.length, at, 8, name);
        out[name] = b.readDoubleLE(at);
        at += 8;
        break;
      case 'path':
      case 'text': {
        const [v, next] = readString(b, at, kind, name);
        out[name] = v;
        at = next;
        break;
      }
      case 'bytes':
        // A view, not a copy: the caller owns the message (a service's
        // request payload is its own copy already; a client reads a
        // reply's data at once).
        out[name] = b.subarray(at);
        at = b.length;
        break;
      case 'entries': {
        const [entries, next] = readEntries(b, at, name);
        out[name] = entries;
        at = next;
        break;
      }
    }
  }
  if (at !== b.length) throw bad(`${b.length - at} bytes trail the message`);
  return out;
}

/** What the compiled coders (coders.ts) call: the helpers above. */
const helpers: CoderHelpers = {
  VERSION: PROTOCOL_VERSION,
  STAT_BYTES,
  fieldError,
  bad,
  stringSize,
  entriesSize,
  writeString,
  writeInt,
  writeEntries,
  viewOf,
  opened,
  need,
  readInt,
  readString,
  readEntries,
  decodeStat,
};

/**
 * The coder of each opcode, made on first use: compiled, or where none
 * can be (code generation refused) `encode` / `decode` over its table.
 */
function coderOf<T>(cache: Map<number, T>, tables: Record<Opcode, readonly Field[]>, opcode: number, make: (fields: readonly Field[]) => T): T {
  let f = cache.get(opcode);
  if (f === undefined) {
    // An unknown opcode throws here, before anything is cached for it.
    f = make(table(tables, opcode));
    cache.set(opcode, f);
  }
  return f;
}
const encoderOf = (fields: readonly Field[]): Encoder => compileEncoder(fields, helpers) ?? ((msg, into) => encode(fields, msg as Message, into));
const decoderOf = (fields: readonly Field[]): Decoder => compileDecoder(fields, fields === STAT, helpers) ?? ((bytes) => decode(fields, bytes));
const requestEncoders = new Map<number, Encoder>();
const requestDecoders = new Map<number, Decoder>();
const resultEncoders = new Map<number, Encoder>();
const resultDecoders = new Map<number, Decoder>();

/** For tests: the interpreting coders, which the compiled ones must match. */
export const interpreted = { encode, decode, REQUESTS, RESULTS };

/**
 * Encodes a request of `opcode` (fields as in the protocol table). With
 * `into`, a buffer the caller reuses, the request is written there when it
 * fits and a view of it is returned (valid until the caller reuses it):
 * a fresh Buffer of a few KiB costs microseconds to allocate here.
 */
export function encodeRequest(opcode: number, args: Message, into?: Buffer): Buffer {
  return coderOf(requestEncoders, REQUESTS, opcode, encoderOf)(args, into);
}

/** Decodes a request strictly; anything off throws `ERR_IPC_BAD_MESSAGE`. A `bytes` field is a view of `bytes`. */
export function decodeRequest(opcode: number, bytes: Uint8Array): Message {
  return coderOf(requestDecoders, REQUESTS, opcode, decoderOf)(bytes) as Message;
}

/** Encodes the body of a successful result of `opcode`. */
export function encodeResult(opcode: number, result: Message): Buffer {
  return coderOf(resultEncoders, RESULTS, opcode, encoderOf)(result, undefined);
}

/** Decodes the body of a successful result strictly. A `bytes` field is a view of `bytes`. */
export function decodeResult(opcode: number, bytes: Uint8Array): Message {
  return coderOf(resultDecoders, RESULTS, opcode, decoderOf)(bytes) as Message;
}

/** The field names and kinds of an opcode's request and result, for tools and tests. */
export function describe(opcode: Opcode): { request: readonly Field[]; result: readonly Field[] } {
  return { request: table(REQUESTS, opcode), result: table(RESULTS, opcode) };
}
