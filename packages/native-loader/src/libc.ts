// Which C library this Linux process runs on, the way napi-rs platform
// packages are named (`gnu` or `musl`).
import { readFileSync } from 'node:fs';

export function familySync(): 'gnu' | 'musl' {
  const report = process.report?.getReport?.() as { header?: { glibcVersionRuntime?: string } } | undefined;
  if (report?.header?.glibcVersionRuntime) return 'gnu';
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl') ? 'musl' : 'gnu';
  } catch {
    return 'gnu';
  }
}
