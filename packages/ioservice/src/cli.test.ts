import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { temporaryDirectory, readFile, writeFile } from '@polytropon/libservice/conformance';
import { describe, expect, it } from 'vitest';
import { IoServiceClient } from './client.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

function run(config: string) {
  const child = spawn(process.execPath, [cli, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const ready = new Promise<void>((res, rej) => {
    child.stdout.on('data', () => out.includes('ready') && res());
    child.on('exit', (code) => rej(new Error(`exited ${code}: ${err}`)));
  });
  return { child, ready, output: () => ({ out, err }) };
}

describe('polytropon-ioservice', () => {
  it('serves the configured stacks as its own process and stops cleanly on SIGTERM', async () => {
    const dir = await temporaryDirectory('cli-');
    for (const d of ['upper', 'image', 'data']) mkdirSync(join(dir.path, d));
    writeFileSync(join(dir.path, 'image', 'os-release'), 'from the image');
    const endpoint = `cli-test-${process.pid}`;
    const config = join(dir.path, 'service.json');
    writeFileSync(
      config,
      JSON.stringify({
        endpoint,
        instances: {
          rootfs: { type: 'union', upper: { type: 'local', root: join(dir.path, 'upper') }, lowers: [{ type: 'local', root: join(dir.path, 'image') }] },
          data: { type: 'local', root: join(dir.path, 'data') },
        },
        channel: { buffers: 8, bufferSize: 65536 },
        spinNs: 20000,
        cpus: [0],
      }),
    );
    const svc = run(config);
    await svc.ready;
    expect(svc.output().out).toBe(`ready ${endpoint}\n`);
    const rootfs = IoServiceClient.attach(endpoint, 'rootfs');
    const data = IoServiceClient.attach(endpoint, 'data');
    expect(await readFile(rootfs, '/os-release')).toBe('from the image');
    await writeFile(data, '/db', 'records');
    expect(readFileSync(join(dir.path, 'data', 'db'), 'utf8')).toBe('records');
    // Pinned as configured.
    const status = readFileSync(`/proc/${svc.child.pid}/status`, 'utf8');
    expect(/Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1]).toBe('0');
    svc.child.kill('SIGTERM');
    const [code] = await once(svc.child, 'exit');
    expect(code).toBe(0);
    await expect(rootfs.stat('/')).rejects.toMatchObject({ code: 'ERR_IPC_SERVICE_GONE' });
    await rootfs.unmount();
    await data.unmount();
    await dir.remove();
  });

  it('refuses a bad configuration with a clear message', async () => {
    const dir = await temporaryDirectory('cli-');
    const config = join(dir.path, 'bad.json');
    writeFileSync(config, JSON.stringify({ endpoint: 'x', instances: { a: { type: 'nfs', root: '/' } } }));
    const svc = run(config);
    await expect(svc.ready).rejects.toThrow(/exited 2/);
    expect(svc.output().err).toMatch(/^polytropon-ioservice: cannot use .*bad\.json: service config\.instances\.a\.type/);
    writeFileSync(config, JSON.stringify({ endpoint: 'x', instances: { a: { type: 'local', root: join(dir.path, 'missing') } } }));
    const svc2 = run(config);
    await expect(svc2.ready).rejects.toThrow(/exited 2/);
    expect(svc2.output().err).toMatch(/cannot build the instances: ENOENT/);
    await dir.remove();
  });
});
