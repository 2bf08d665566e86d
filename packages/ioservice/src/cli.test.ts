import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { temporaryDirectory, readFile, writeFile } from '@polytropon/libservice/conformance';
import { CephLibservice } from '@polytropon/libservice-ceph';
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

/** Writes a service.json into `dir`; returns its path. */
function configFile(dir: string, value: object, name = 'service.json'): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

describe('polytropon-ioservice', () => {
  it('serves the configured stacks as its own process and stops cleanly on SIGTERM', async () => {
    const dir = await temporaryDirectory('cli-');
    for (const d of ['upper', 'image', 'data']) mkdirSync(join(dir.path, d));
    writeFileSync(join(dir.path, 'image', 'os-release'), 'from the image');
    const endpoint = `cli-test-${process.pid}`;
    const config = configFile(dir.path, {
      endpoint,
      instances: {
        rootfs: { type: 'union', upper: { type: 'local', root: join(dir.path, 'upper') }, lowers: [{ type: 'local', root: join(dir.path, 'image') }] },
        data: { type: 'local', root: join(dir.path, 'data') },
      },
      channel: { buffers: 8, bufferSize: 65536 },
      spinNs: 20000,
      cpus: [0],
    });
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
    writeFileSync(config, JSON.stringify({ endpoint: 'x', instances: {}, nativeLocal: 'yes' }));
    const svc3 = run(config);
    await expect(svc3.ready).rejects.toThrow(/exited 2/);
    expect(svc3.output().err).toMatch(/service config\.nativeLocal/);
    await dir.remove();
  });
});

// A pool served from CephFS: the I/O service holds the libcephfs clients.
const cephConf = process.env.CEPH_CONF !== undefined && existsSync(process.env.CEPH_CONF) ? process.env.CEPH_CONF : undefined;
if (cephConf === undefined && process.env.POLYTROPON_CEPH_REQUIRED === '1') throw new Error('POLYTROPON_CEPH_REQUIRED=1 but CEPH_CONF names no ceph.conf');
describe('polytropon-ioservice with CephFS instances', () => {
  it('refuses bad Ceph options naming the field', async () => {
    const dir = await temporaryDirectory('cli-');
    const config = configFile(dir.path, { endpoint: 'x', instances: { a: { type: 'ceph', cache: { inodes: -1 } } } }, 'bad.json');
    const svc = run(config);
    await expect(svc.ready).rejects.toThrow(/exited 2/);
    expect(svc.output().err).toMatch(/service config\.instances\.a\.cache\.inodes/);
    await dir.remove();
  });

  it.skipIf(cephConf === undefined)('serves a Ceph directory, and a union whose image layer is on Ceph', async () => {
    const conf = cephConf as string;
    const base = `/tests/ioservice-${process.pid}`;
    const top = await CephLibservice.create({ conf });
    const dir = await temporaryDirectory('cli-');
    try {
      await top.mkdir('/tests').catch(() => {});
      await top.mkdir(base);
      await top.mkdir(`${base}/image`);
      await top.mkdir(`${base}/shared`);
      await writeFile(top, `${base}/image/os-release`, 'from the image on Ceph');
      mkdirSync(join(dir.path, 'upper'));
      const endpoint = `cli-ceph-${process.pid}`;
      const config = configFile(dir.path, {
        endpoint,
        instances: {
          shared: { type: 'ceph', conf, root: `${base}/shared`, cache: { inodes: 1024 } },
          rootfs: { type: 'union', upper: { type: 'local', root: join(dir.path, 'upper') }, lowers: [{ type: 'ceph', conf, root: `${base}/image` }] },
        },
      });
      const svc = run(config);
      await svc.ready;
      const shared = IoServiceClient.attach(endpoint, 'shared');
      const rootfs = IoServiceClient.attach(endpoint, 'rootfs');
      expect(await readFile(rootfs, '/os-release')).toBe('from the image on Ceph');
      await writeFile(rootfs, '/os-release', 'changed in the pool');
      expect(readFileSync(join(dir.path, 'upper', 'os-release'), 'utf8')).toBe('changed in the pool');
      expect(await readFile(top, `${base}/image/os-release`)).toBe('from the image on Ceph');
      await writeFile(shared, '/db', 'records');
      expect(shared.statSync('/db').size).toBe(7);
      expect(await readFile(top, `${base}/shared/db`)).toBe('records');
      svc.child.kill('SIGTERM');
      const [code] = await once(svc.child, 'exit');
      expect(code).toBe(0);
      await Promise.all([shared.unmount(), rootfs.unmount()]);
    } finally {
      await top.unlink(`${base}/shared/db`).catch(() => {});
      await top.unlink(`${base}/image/os-release`).catch(() => {});
      for (const d of ['shared', 'image', '']) await top.rmdir(`${base}/${d}`.replace(/\/$/, '')).catch(() => {});
      await top.unmount();
      await dir.remove();
    }
  });
});
