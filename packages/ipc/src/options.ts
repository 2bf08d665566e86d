import { z } from 'zod';
import { IpcError, IpcErrorCode } from './errors.js';

const endpoint = z
  .string()
  .min(1)
  .max(200)
  .regex(/^\/?[^/\0]+$/, 'an endpoint is a shared-memory name: no "/" inside, no NUL');

/** Options of {@link FrontDriver.attach}. */
export const FrontDriverOptions = z
  .object({
    /** Nanoseconds to spin for a reply before sleeping on the futex. Default 50 000. */
    spinNs: z.number().int().min(0).max(1e10).default(50_000),
    /** Request queue (core group) to post to. Default: the one of the CPU this thread runs on. */
    queue: z.number().int().min(0).max(63).optional(),
  })
  .strict();
export type FrontDriverOptions = z.input<typeof FrontDriverOptions>;

/** Options of {@link BackDriver.create}. */
export const BackDriverOptions = z
  .object({
    /** Request queues, one per core group. Default 1. */
    queues: z.number().int().min(1).max(64).default(1),
    /** Slots per request queue, a power of two. Default 1024. */
    queueCapacity: z.number().int().min(2).max(1 << 24).default(1024),
    /** Request buffers: how many application threads can attach at once. Default 64. */
    buffers: z.number().int().min(1).max(65536).default(64),
    /** Bytes per request buffer (larger requests and replies go in fragments). Default 1 MiB. */
    bufferSize: z.number().int().min(4096).max(1 << 30).multipleOf(64).default(1 << 20),
    /** Largest request accepted, all fragments together. Default 64 MiB. */
    maxRequest: z.number().int().min(0).max(2 ** 31).default(64 << 20),
  })
  .strict()
  .refine((o) => (o.queueCapacity & (o.queueCapacity - 1)) === 0, { message: 'queueCapacity must be a power of two' });
export type BackDriverOptions = z.input<typeof BackDriverOptions>;

/** Parses with `schema`, turning zod's complaint into ERR_IPC_INVALID_ARGUMENT. */
export function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) {
    const detail = r.error.issues.map((i) => `${i.path.join('.') || what}: ${i.message}`).join('; ');
    throw new IpcError(IpcErrorCode.InvalidArgument, `invalid ${what}: ${detail}`);
  }
  return r.data;
}

export function checkEndpoint(name: unknown): string {
  return parse(endpoint, name, 'endpoint');
}

export function checkOpcode(opcode: unknown): number {
  if (typeof opcode !== 'number' || !Number.isInteger(opcode) || opcode < 0 || opcode >= 0xffff0000) {
    throw new IpcError(IpcErrorCode.InvalidArgument, `opcode must be an integer in 0..0xfffeffff, got ${String(opcode)}`);
  }
  return opcode;
}
