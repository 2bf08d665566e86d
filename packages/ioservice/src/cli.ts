#!/usr/bin/env -S node --max-semi-space-size=1 --v8-pool-size=1 --single-threaded-gc
// (A 1 MB young generation, one V8 worker thread and a single-threaded GC keep an idle service near 60 MB resident; see README.md.)
// polytropon-ioservice --config service.json
//
// Runs one I/O service (one per pool) as its own process: builds the
// configured instances, creates the channel, prints `ready <endpoint>` on
// stdout, and serves until SIGTERM or SIGINT, when it stops gracefully.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FsError, type Libservice } from '@polytropon/libservice';
import { buildStack, parseConfig } from './config.js';
import { IoService } from './service.js';

function fail(message: string): never {
  process.stderr.write(`polytropon-ioservice: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
if (values.help || !values.config) {
  process.stdout.write('usage: polytropon-ioservice --config service.json\n');
  process.exit(values.help ? 0 : 2);
}

let config;
try {
  config = parseConfig(JSON.parse(readFileSync(values.config, 'utf8')));
} catch (e) {
  fail(`cannot use ${values.config}: ${(e as Error).message}`);
}

if (config.cpus) {
  // Node cannot set affinity itself; taskset (util-linux) does, for every thread (-a).
  try {
    execFileSync('taskset', ['-a', '-p', '-c', config.cpus.join(','), String(process.pid)], { stdio: 'ignore' });
  } catch (e) {
    fail(`cannot pin to cpus ${config.cpus.join(',')}: ${(e as Error).message}`);
  }
}

// The instances' errors only become `-errno` replies here: their stack
// traces (about 3 µs each) are not worth taking.
FsError.stackTraces = false;

const owned: Libservice[] = [];
const instances: Record<string, Libservice> = {};
try {
  for (const [name, stack] of Object.entries(config.instances)) instances[name] = (await buildStack(stack, owned)).stack;
} catch (e) {
  fail(`cannot build the instances: ${(e as Error).message}`);
}

let service: IoService;
try {
  // The service's own options, as far as the file gives them (the rest default).
  const { instances: _, cpus: __, ...options } = config;
  service = IoService.create({ ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)), endpoint: config.endpoint, instances }).start();
} catch (e) {
  fail(`${(e as { code?: string }).code ?? 'error'}: ${(e as Error).message}`);
}

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await service.stop();
  for (const s of owned.reverse()) await s.unmount().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdout.write(`ready ${config.endpoint}\n`);
