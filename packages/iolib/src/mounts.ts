// The mount table: which paths go to which I/O service instance. Paths
// under a mount point go to that mount's service; all others to node:fs
// (the kernel path). The longest mount point containing a path wins.
import { IoServiceClient } from '@polytropon/ioservice';
import { parseOptions } from '@polytropon/libservice';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const Target = z.union([
  z.strictObject({ endpoint: z.string().min(1), instance: z.string().min(1) }),
  // The short form: 'endpoint/instance'.
  z
    .string()
    .regex(/^[^/\0]+\/[A-Za-z0-9._-]+$/, "a mount target is 'endpoint/instance' or { endpoint, instance }")
    .transform((s) => {
      const i = s.indexOf('/');
      return { endpoint: s.slice(0, i), instance: s.slice(i + 1) };
    }),
]);

export const MountsOptions = z.record(
  z.string().regex(/^\/[^\0]*$/, 'a mount point is an absolute path'),
  Target,
);
export type Mounts = z.input<typeof MountsOptions>;

/** A mount: where it is and how to reach its instance. */
export class Mount {
  readonly point: string;
  /** What a path beneath the point starts with: the point and a '/' ('/' for the root). */
  readonly prefix: string;
  readonly endpoint: string;
  readonly instance: string;
  /** Bumped when the client is dropped: descriptors opened before are no longer valid. */
  epoch = 0;
  #client: IoServiceClient | undefined;

  readonly #spinNs: number | undefined;

  constructor(point: string, endpoint: string, instance: string, spinNs?: number) {
    this.point = point;
    this.prefix = point === '/' ? '/' : point + '/';
    this.endpoint = endpoint;
    this.instance = instance;
    this.#spinNs = spinNs;
  }

  /** This thread's client of the instance, attached on first use (and again after the service went away). */
  get client(): IoServiceClient {
    this.#client ??= IoServiceClient.attach(this.endpoint, this.instance, this.#spinNs === undefined ? undefined : { spinNs: this.#spinNs });
    return this.#client;
  }

  /** Forgets the client (its service is gone): the next call attaches anew. */
  drop(): void {
    const c = this.#client;
    this.#client = undefined;
    this.epoch++;
    void c?.unmount().catch(() => {});
  }
}

/** A path under a mount: the mount and the path within its instance. */
export interface Routed {
  mount: Mount;
  path: string;
}

/** Anything node:fs takes as a path. */
export type PathLike = string | Buffer | URL;

export function pathString(p: PathLike): string {
  if (typeof p === 'string') return p;
  if (p instanceof URL) return fileURLToPath(p);
  if (Buffer.isBuffer(p)) return p.toString('utf8');
  throw Object.assign(new TypeError(`The "path" argument must be of type string or an instance of Buffer or URL. Received ${typeof p}`), { code: 'ERR_INVALID_ARG_TYPE' });
}

/**
 * True for an absolute path that path.resolve() would return unchanged (no
 * empty, '.' or '..' component, no trailing '/'): the common case, checked
 * in a fraction of resolve()'s time.
 */
function isPlainAbsolute(s: string): boolean {
  if (s.charCodeAt(0) !== 47 /* / */) return false;
  if (s.length === 1) return true;
  if (s.charCodeAt(s.length - 1) === 47) return false;
  let start = 1;
  for (let i = 1; i <= s.length; i++) {
    if (i === s.length || s.charCodeAt(i) === 47) {
      const n = i - start;
      if (n === 0) return false;
      if (s.charCodeAt(start) === 46 /* . */ && (n === 1 || (n === 2 && s.charCodeAt(start + 1) === 46))) return false;
      start = i + 1;
    }
  }
  return true;
}

export class MountTable {
  readonly #mounts: Mount[];

  constructor(mounts: Mounts, spinNs?: number) {
    const parsed = parseOptions(MountsOptions, mounts, 'mounts');
    this.#mounts = Object.entries(parsed)
      .map(([point, t]) => new Mount(resolve(point), t.endpoint, t.instance, spinNs))
      // Longest first: the innermost mount point wins.
      .sort((a, b) => b.point.length - a.point.length);
  }

  get mounts(): readonly Mount[] {
    return this.#mounts;
  }

  /** The mount a path is under, or undefined for a kernel path. */
  route(p: PathLike): Routed | undefined {
    if (this.#mounts.length === 0) return undefined;
    const s = pathString(p);
    if (s.includes('\0')) return undefined; // node:fs gives its own error
    const abs = isPlainAbsolute(s) ? s : resolve(s);
    // resolve() drops a trailing '/' and a final '.', which the kernel's
    // rules need (a file named with '/' is ENOTDIR): hand them on.
    const tail = s.length > 1 && s.endsWith('/') ? '/' : s.endsWith('/.') ? '/.' : '';
    for (const mount of this.#mounts) {
      if (abs === mount.point) return { mount, path: '/' };
      if (abs.startsWith(mount.prefix)) return { mount, path: (mount.point === '/' ? abs : abs.slice(mount.point.length)) + tail };
    }
    return undefined;
  }
}
