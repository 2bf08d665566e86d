// The OCI image-layer convention for what a layer removes: `.wh.NAME` hides
// NAME of the layers below, and `.wh..wh..opq` in a directory hides all of
// the directory's contents below. Every name beginning with `.wh.` is
// reserved: never listed, never opened, never created by users. The union
// also keeps its own work files under that prefix (`.wh..wh..tmp.N`).
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE = '.wh..wh..opq';
const WORK_PREFIX = '.wh..wh..tmp.';

export const isMarker = (name: string): boolean => name.startsWith(WHITEOUT_PREFIX);

/** The name a whiteout hides, or undefined for the opaque marker and work files. */
export function whitedOut(name: string): string | undefined {
  if (!name.startsWith(WHITEOUT_PREFIX) || name.startsWith('.wh..wh.')) return undefined;
  return name.slice(WHITEOUT_PREFIX.length);
}

let work = 0;
/** A fresh name for a work file or directory (hidden, as every marker). */
export const workName = (): string => `${WORK_PREFIX}${process.pid}.${++work}`;

export const join = (dir: string, name: string): string => (dir === '/' ? '/' : dir + '/') + name;

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export const baseName = (path: string): string => path.slice(path.lastIndexOf('/') + 1);
