import { z } from 'zod';
import { RcqbError, RcqbErrorCode } from './errors.js';

/** Largest capacity (slots) and item size (bytes) the layout accepts. */
export const MAX_CAPACITY = 1 << 24;
export const MAX_ITEM_SIZE = 64 * 1024;
/** Default spin budget before an operation sleeps on its futex. */
export const DEFAULT_SPIN_NS = 20_000;

const name = z
  .string()
  .min(1)
  .max(254)
  .regex(/^\/?[^/\0]+$/, 'a name is one path segment: no "/" (but an optional leading one) and no NUL')
  .refine((n) => n !== '.' && n !== '..' && n !== '/.' && n !== '/..', 'name must not be "." or ".."');

const spinNs = z.number().int().min(0).max(1e9);

export const CreateOptions = z
  .object({
    /** Number of slots: a power of two, 1 to 2^24. */
    capacity: z
      .number()
      .int()
      .min(1)
      .max(MAX_CAPACITY)
      .refine((n) => (n & (n - 1)) === 0, 'capacity must be a power of two'),
    /** Largest item in bytes, 1 to 65536 (8 for the number fast path). */
    itemSize: z.number().int().min(1).max(MAX_ITEM_SIZE),
    /** Name of a shared-memory segment to create (mode 0600) for other processes to open. */
    name: name.optional(),
    /** Nanoseconds to spin before sleeping on the futex. */
    spinNs: spinNs.default(DEFAULT_SPIN_NS),
  })
  .strict();

export type CreateOptions = z.input<typeof CreateOptions>;

export const OpenOptions = z.object({ spinNs: spinNs.default(DEFAULT_SPIN_NS) }).strict();
export type OpenOptions = z.input<typeof OpenOptions>;

export const QueueName = name;

/** Parses with zod and throws an {@link RcqbError} `ERR_RCQB_INVALID_ARGUMENT` on failure. */
export function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const detail = r.error.issues.map((i) => `${i.path.join('.') || what}: ${i.message}`).join('; ');
    throw new RcqbError(RcqbErrorCode.InvalidArgument, `invalid ${what}: ${detail}`);
  }
  return r.data;
}
