// The standalone service's configuration file: what `polytropon-ioservice
// --config service.json` reads, validated with zod, and how its instances
// (stacks of libservices) are built.
import { LocalLibservice, parseOptions } from '@polytropon/libservice';
import type { Libservice } from '@polytropon/libservice';
import { UnionLibservice } from '@polytropon/libservice-union';
import { CephLibservice, CephOptions, type CephLibserviceOptions } from '@polytropon/libservice-ceph';
import { z } from 'zod';
import { ChannelOptions } from './service.js';

/** A libservice stack, declared. */
export type StackConfig =
  | { type: 'local'; root: string; syscalls?: 'inline' | 'threadpool' | undefined }
  | { type: 'union'; upper: StackConfig; lowers?: StackConfig[] | undefined; cacheDirectories?: number | undefined }
  | ({ type: 'ceph' } & CephLibserviceOptions);

export const StackConfig: z.ZodType<StackConfig> = z.lazy(() =>
  z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('local'), root: z.string().min(1), syscalls: z.enum(['inline', 'threadpool']).optional() }),
    z.strictObject({ type: z.literal('union'), upper: StackConfig, lowers: z.array(StackConfig).optional(), cacheDirectories: z.number().int().min(0).optional() }),
    // A CephFS client of its own (see @polytropon/libservice-ceph for the options).
    CephOptions.extend({ type: z.literal('ceph') }),
  ]) as z.ZodType<StackConfig>,
);

export const ServiceConfig = z.strictObject({
  /** The shared-memory name applications attach to. */
  endpoint: z.string().min(1),
  /** Filesystem instances by name. */
  instances: z.record(z.string(), StackConfig),
  maxHandlesPerProcess: z.number().int().optional(),
  maxReadBytes: z.number().int().optional(),
  /** Nanoseconds to spin for requests while busy before sleeping. */
  spinNs: z.number().int().min(0).optional(),
  /** Longest sleep between checks while idle, in ms. */
  idleMs: z.number().int().min(1).optional(),
  /** Request queues, slots, request buffers and their size (see @polytropon/ipc). */
  channel: ChannelOptions.optional(),
  /** Answer plain local-directory instances natively (default true; see README.md). */
  nativeLocal: z.boolean().optional(),
  /** CPUs the service's threads may run on (all of the process's threads). */
  cpus: z.array(z.number().int().min(0).max(4095)).min(1).optional(),
});
export type ServiceConfig = z.input<typeof ServiceConfig>;

/** Validates a parsed service.json; a bad one throws ERR_INVALID_ARG_VALUE naming the field. */
export function parseConfig(value: unknown): z.output<typeof ServiceConfig> {
  return parseOptions(ServiceConfig, value, 'service config');
}

/** Builds a declared stack; returns it and every libservice in it (to unmount them all on stop). */
export async function buildStack(c: StackConfig, all: Libservice[] = []): Promise<{ stack: Libservice; all: Libservice[] }> {
  if (c.type === 'local') {
    const s = await LocalLibservice.create({ root: c.root, ...(c.syscalls ? { syscalls: c.syscalls } : {}) });
    all.push(s);
    return { stack: s, all };
  }
  if (c.type === 'ceph') {
    const { type: _, ...options } = c;
    const s = await CephLibservice.create(options);
    all.push(s);
    return { stack: s, all };
  }
  const upper = (await buildStack(c.upper, all)).stack;
  const lowers: Libservice[] = [];
  for (const l of c.lowers ?? []) lowers.push((await buildStack(l, all)).stack);
  const u = await UnionLibservice.create({ upper, lowers, ...(c.cacheDirectories === undefined ? {} : { cacheDirectories: c.cacheDirectories }) });
  all.push(u);
  return { stack: u, all };
}
