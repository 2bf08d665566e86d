import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MountTable } from './mounts.js';

describe('MountTable.route', () => {
  it('routes every spelling of a path as path.resolve() reads it', () => {
    const table = new MountTable({ '/mnt/a': 'ep/one', '/mnt/a/b': 'ep/two', '/': 'ep/root' });
    // The route path.resolve() gives, the way route() worked before its fast path.
    const oracle = (s: string) => {
      const abs = resolve(s);
      const tail = s.length > 1 && s.endsWith('/') ? '/' : s.endsWith('/.') ? '/.' : '';
      for (const m of table.mounts) {
        if (abs === m.point) return { instance: m.instance, path: '/' };
        if (abs.startsWith(m.point === '/' ? '/' : m.point + '/')) return { instance: m.instance, path: (m.point === '/' ? abs : abs.slice(m.point.length)) + tail };
      }
      return undefined;
    };
    const tokens = ['', '.', '..', 'mnt', 'a', 'b', '...', '.x', 'x..'];
    let checked = 0;
    const visit = (parts: string[]) => {
      for (const lead of ['/', '']) {
        for (const trail of ['', '/']) {
          const s = lead + parts.join('/') + trail;
          if (s === '') continue;
          const r = table.route(s);
          expect(r && { instance: r.mount.instance, path: r.path }, s).toEqual(oracle(s));
          checked++;
        }
      }
      if (parts.length < 4) for (const t of tokens) visit([...parts, t]);
    };
    visit([]);
    expect(checked).toBeGreaterThan(20_000);
  });
});
