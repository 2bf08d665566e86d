import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseOpenFlags } from '@polytropon/libservice';
import { expectCode, readFile, writeFile } from '@polytropon/libservice/conformance';
import { CephLibservice } from './index.js';
import { closeTop, clusterConf, freshRoot, freshService, SKIP_NOTICE, topClient } from './fixtures/cluster.js';

const run = promisify(execFile);
/** The built package, for scripts run in other Node processes (each loads libcephfs itself). */
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

describe('without a cluster', () => {
  it('imports anywhere; bad options are ERR_INVALID_ARG_VALUE before anything is loaded', async () => {
    await expect(CephLibservice.create({ root: 'relative' } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(CephLibservice.create({ cache: { inodes: -1 } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(CephLibservice.create({ nonsense: 1 } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('a machine without libcephfs gets ERR_CEPH_LIBRARY, naming what to install', async () => {
    const script = `
      import { CephLibservice } from ${JSON.stringify(dist)};
      try {
        await CephLibservice.create({ monHost: '127.0.0.1:9', library: '/nonexistent/libcephfs.so.2' });
        console.log('no error');
      } catch (e) {
        console.log(JSON.stringify({ code: e.code, message: e.message }));
      }
      // A failed load is not kept: the default file still loads where it is installed.
      try {
        console.log(JSON.stringify({ version: CephLibservice.libraryVersion() }));
      } catch (e) {
        console.log(JSON.stringify({ code: e.code }));
      }`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
    const [first, second] = stdout.trim().split('\n').map((l) => JSON.parse(l) as { code?: string; message?: string; version?: string });
    expect(first!.code).toBe('ERR_CEPH_LIBRARY');
    expect(first!.message).toMatch(/libcephfs2/);
    expect(first!.message).toMatch(/nonexistent/);
    if (existsSync('/usr/include/cephfs/libcephfs.h')) expect(second!.version).toMatch(/^\d+\.\d+/);
    else expect(second!.code).toBe('ERR_CEPH_LIBRARY');
  });
});

const conf = clusterConf();
if (conf === undefined) {
  describe('CephLibservice against a cluster', () => it.skip(SKIP_NOTICE, () => {}));
} else {
  afterAll(closeTop);

  describe('connecting', () => {
    it('a root that does not exist is ERR_CEPH_CONNECT (mount, ENOENT) unless createRoot', async () => {
      const root = `/tests/missing-${process.pid}`;
      await expect(CephLibservice.create({ conf, root })).rejects.toMatchObject({ code: 'ERR_CEPH_CONNECT', stage: 'mount', errno: 'ENOENT' });
      const s = await CephLibservice.create({ conf, root, createRoot: true });
      await s.unmount();
      const top = await topClient(conf);
      expect((await top.stat(root)).mode & 0o170000).toBe(0o040000);
      await top.rmdir(root);
    });

    it('an unknown option, a missing filesystem and silent monitors fail clearly, without hanging', async () => {
      await expect(CephLibservice.create({ conf, config: { no_such_option: 1 } })).rejects.toMatchObject({ code: 'ERR_CEPH_CONNECT', stage: 'option' });
      await expect(CephLibservice.create({ conf, fsName: 'nofs' })).rejects.toMatchObject({ code: 'ERR_CEPH_CONNECT' });
      const t = Date.now();
      const e = await CephLibservice.create({ monHost: '127.0.0.1:9', keyring: '/dev/null', mountTimeoutMs: 2000 }).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'ERR_CEPH_CONNECT', stage: 'mount' });
      expect(Date.now() - t).toBeLessThan(30_000);
    });

    it('cache sizes and other options reach the client', async () => {
      const { service, dispose } = await freshService(conf, { cache: { inodes: 4321, bytes: 8 << 20 }, config: { client_readahead_max_bytes: 1 << 20 } });
      expect(service.config('client_cache_size')).toBe('4321');
      expect(service.config('client_oc_size')).toBe(String(8 << 20));
      expect(service.config('client_readahead_max_bytes')).toBe(String(1 << 20));
      await service.unmount();
      await dispose();
    });

    it('reports the libcephfs version', () => {
      expect(CephLibservice.libraryVersion()).toMatch(/^\d+\.\d+\.\d+/);
    });
  });

  describe('a tenant stays in its root', () => {
    it("'..', absolute symlinks and symlinks climbing out all stay beneath the root", async () => {
      const top = await topClient(conf);
      const { root, remove } = await freshRoot(conf);
      await top.mkdir(`${root}/served`);
      await writeFile(top, `${root}/secret`, 'other tenant');
      const s = await CephLibservice.create({ conf, root: `${root}/served` });
      try {
        expect((await s.readdir('/..')).map((e) => e.name)).toEqual([]);
        await expectCode(s.stat('/../secret'), 'ENOENT', 'stat', '/../secret');
        await s.symlink('../../../secret', '/up');
        await expectCode(s.open('/up', parseOpenFlags('r')), 'ENOENT', 'open', '/up');
        await s.symlink(`${root}/secret`, '/abs');
        await expectCode(s.stat('/abs'), 'ENOENT', 'stat', '/abs');
        await s.symlink('/', '/top');
        expect((await s.readdir('/top/..')).map((e) => e.name).sort()).toEqual(['abs', 'top', 'up']);
        // Writing through an escaping link lands inside.
        await writeFile(s, '/up', 'inside');
        expect(await readFile(top, `${root}/secret`)).toBe('other tenant');
        expect(await readFile(s, '/secret')).toBe('inside');
      } finally {
        await s.unmount();
        await remove();
      }
    });
  });

  describe('clients of one filesystem', () => {
    it('see each other: what one writes and closes, another reads', async () => {
      const { service: a, root, dispose } = await freshService(conf);
      const b = await CephLibservice.create({ conf, root });
      try {
        await writeFile(a, '/shared', 'from a');
        expect(await readFile(b, '/shared')).toBe('from a');
        await b.rename('/shared', '/moved');
        await expectCode(a.stat('/shared'), 'ENOENT');
        expect(await readFile(a, '/moved')).toBe('from a');
      } finally {
        await Promise.all([a.unmount(), b.unmount()]);
        await dispose();
      }
    });

    it('many operations in flight at once, from three clients, each checked', async () => {
      const { service: a, root, dispose } = await freshService(conf);
      const clients = [a, await CephLibservice.create({ conf, root }), await CephLibservice.create({ conf, root })];
      try {
        await a.mkdir('/d');
        const work = clients.flatMap((c, ci) =>
          Array.from({ length: 40 }, async (_, i) => {
            const p = `/d/c${ci}-${i}`;
            const body = `client ${ci} file ${i} `.repeat(1 + ((i * 7) % 50));
            await writeFile(c, p, body);
            const other = clients[(ci + 1) % clients.length]!;
            expect(await readFile(other, p)).toBe(body);
            if (i % 3 === 0) await other.unlink(p);
          }),
        );
        await Promise.all(work);
        const left = (await a.readdir('/d')).map((e) => e.name);
        expect(left.length).toBe(clients.length * (40 - Math.ceil(40 / 3)));
      } finally {
        await Promise.all(clients.map((c) => c.unmount()));
        await dispose();
      }
    });

    it('processes each with their own client write one directory; nothing is lost', async () => {
      const { service: s, root, dispose } = await freshService(conf);
      try {
        const script = (n: number) => `
          import { CephLibservice } from ${JSON.stringify(dist)};
          const s = await CephLibservice.create({ conf: ${JSON.stringify(conf)}, root: ${JSON.stringify(root)} });
          const enc = new TextEncoder();
          for (let i = 0; i < 30; i++) {
            const h = s.openSync('/p${n}-' + i, 0o1101, 0o644);
            const b = enc.encode('process ${n} file ' + i);
            s.writeSync(h, b, 0, b.length, null);
            s.closeSync(h);
          }
          await s.unmount();`;
        await Promise.all([0, 1, 2, 3].map((n) => run(process.execPath, ['--input-type=module', '-e', script(n)])));
        const names = (await s.readdir('/')).map((e) => e.name);
        expect(names.length).toBe(120);
        for (const n of [0, 1, 2, 3]) for (const i of [0, 17, 29]) expect(await readFile(s, `/p${n}-${i}`)).toBe(`process ${n} file ${i}`);
      } finally {
        await s.unmount();
        await dispose();
      }
    });
  });

  describe('handles with calls in flight', () => {
    it('close and unmount wait for the reads and writes in flight on a handle', async () => {
      const { service: s, dispose } = await freshService(conf);
      const data = Buffer.alloc(1 << 20, 7);
      const h = await s.open('/big', parseOpenFlags('w+'));
      await s.write(h, data, 0, data.length, 0);
      const reads = Array.from({ length: 16 }, () => {
        const b = Buffer.alloc(data.length);
        return s.read(h, b, 0, b.length, 0).then((n) => n === data.length && b.equals(data));
      });
      await s.close(h);
      expect(await Promise.all(reads)).toEqual(Array(16).fill(true));
      await expectCode(s.read(h, Buffer.alloc(1), 0, 1, 0), 'EBADF', 'read');
      const h2 = await s.open('/big', parseOpenFlags('r+'));
      const writes = Array.from({ length: 16 }, (_, i) => s.write(h2, data, 0, 65536, i * 65536));
      const h3 = await s.open('/big', parseOpenFlags('r'));
      const pending = s.read(h3, Buffer.alloc(4096), 0, 4096, 0);
      s.closeSync(h3); // its file is closed once the read is done
      await s.unmount();
      expect(await Promise.all(writes)).toEqual(Array(16).fill(65536));
      expect(await pending).toBe(4096);
      await dispose();
    });
  });

  describe('unmount', () => {
    it('while operations are in flight: each succeeds or fails cleanly, then ENOTCONN', async () => {
      const { service: s, dispose } = await freshService(conf);
      await writeFile(s, '/f', 'x');
      const inFlight = Array.from({ length: 50 }, () => s.stat('/f').then(() => 'ok', (e: NodeJS.ErrnoException) => e.code));
      await s.unmount();
      for (const r of await Promise.all(inFlight)) expect(['ok', 'ENOTCONN']).toContain(r);
      await expectCode(s.stat('/f'), 'ENOTCONN', 'stat', '/f');
      expect(() => s.statSync('/f')).toThrow(expect.objectContaining({ code: 'ENOTCONN' }));
      await dispose();
    });
  });
}
