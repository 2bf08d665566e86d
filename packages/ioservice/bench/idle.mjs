// What an idle I/O service costs: with 32 pools on a host there are 32 of
// them. Starts polytropon-ioservice (one local instance), makes a burst of
// requests, then leaves it idle with a client still attached and measures
// its CPU time over IDLE_SECONDS (default 10) and its resident memory.
//
//   pnpm --filter @polytropon/ioservice bench      (after pnpm build)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IoServiceClient } from '../dist/index.js';

const SECONDS = Number(process.env.IDLE_SECONDS ?? 10);
const dir = mkdtempSync(join(tmpdir(), 'ioservice-idle-'));
const endpoint = `ioservice-idle-${process.pid}`;
writeFileSync(join(dir, 'service.json'), JSON.stringify({ endpoint, instances: { data: { type: 'local', root: dir } } }));
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
// As the command's own first line runs it.
const svc = spawn(process.execPath, ['--max-semi-space-size=1', '--v8-pool-size=1', '--single-threaded-gc', cli, '--config', join(dir, 'service.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
await once(svc.stdout, 'data');

const ticks = () => {
  const f = readFileSync(`/proc/${svc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (1/100 s)
};
const status = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${svc.pid}/status`, 'utf8'))[1]);

const client = IoServiceClient.attach(endpoint, 'data');
const busy0 = ticks();
const t0 = Date.now();
for (let i = 0; i < 20000; i++) client.statSync('/');
const busyMs = Date.now() - t0;
const busyCpu = (ticks() - busy0) * 10;
// Idle: the client stays attached, nothing is asked.
await new Promise((r) => setTimeout(r, 500));
const idle0 = ticks();
await new Promise((r) => setTimeout(r, SECONDS * 1000));
const idleCpuMs = (ticks() - idle0) * 10;

console.log(`# polytropon-ioservice, node ${process.version}, one local instance, one client attached`);
console.log(`busy: 20000 stat in ${busyMs} ms, service CPU ${busyCpu} ms`);
console.log(`idle ${SECONDS} s: service CPU ${idleCpuMs} ms (${((idleCpuMs / (SECONDS * 1000)) * 100).toFixed(2)}% of a core)`);
console.log(`memory: RSS ${(status('VmRSS') / 1024).toFixed(1)} MB now, peak ${(status('VmHWM') / 1024).toFixed(1)} MB`);
await client.unmount();
svc.kill('SIGTERM');
await once(svc, 'exit');
rmSync(dir, { recursive: true, force: true });
