// Many operations in flight at once on one union, over branches whose
// system calls really wait (libuv's pool), so lookups, listings and changes
// interleave: the caches must never answer with a stale view, and copy-up
// must happen once.
import { LocalLibservice, type Libservice } from '@polytropon/libservice';
import { readFile, temporaryDirectory, writeFile } from '@polytropon/libservice/conformance';
import { constants, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UnionLibservice } from './union.js';

async function stack(lowerFiles: Record<string, string>) {
  const dir = await temporaryDirectory('union-stress-');
  for (const d of ['upper', 'lower']) mkdirSync(join(dir.path, d));
  for (const [p, data] of Object.entries(lowerFiles)) {
    mkdirSync(join(dir.path, 'lower', p, '..'), { recursive: true });
    writeFileSync(join(dir.path, 'lower', p), data);
  }
  const upper = await LocalLibservice.create({ root: join(dir.path, 'upper'), syscalls: 'threadpool' });
  const lower = await LocalLibservice.create({ root: join(dir.path, 'lower'), syscalls: 'threadpool' });
  const union = await UnionLibservice.create({ upper, lowers: [lower] });
  return { union, dispose: async () => { await union.unmount(); await upper.unmount(); await lower.unmount(); await dir.remove(); } };
}

const names = async (s: Libservice, p: string) => (await s.readdir(p)).map((e) => e.name).sort();

describe('UnionLibservice under concurrency', () => {
  it('concurrent writers to one lower file: one copy-up, every write lands, the lower file untouched', async () => {
    const { union, dispose } = await stack({ 'shared/file': '.'.repeat(64) });
    await Promise.all(
      Array.from({ length: 32 }, async (_, i) => {
        const h = await union.open('/shared/file', constants.O_RDWR);
        await union.write(h, Buffer.from(String.fromCharCode(65 + (i % 26))), 0, 1, i);
        await union.close(h);
      }),
    );
    const text = await readFile(union, '/shared/file');
    expect(text.length).toBe(64);
    for (let i = 0; i < 32; i++) expect(text[i]).toBe(String.fromCharCode(65 + (i % 26)));
    expect(text.slice(32)).toBe('.'.repeat(32));
    // Only the file itself in the upper directory: no work file left over.
    expect((await names(union, '/shared')).length).toBe(1);
    await dispose();
  });

  it('creates, renames and unlinks racing listings and lookups: every listing is a real state, the end state exact', async () => {
    const lower: Record<string, string> = {};
    for (let i = 0; i < 20; i++) lower[`d/low${i}`] = `lower ${i}`;
    const { union, dispose } = await stack(lower);
    const workers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; i < 15; i++) {
        const a = `/d/w${w}-${i}`;
        await writeFile(union, a, `${w}:${i}`);
        await union.rename(a, `${a}-moved`);
        if (i % 3 === 0) await union.unlink(`${a}-moved`);
      }
      // Each worker also removes and replaces lower files of its own.
      await union.unlink(`/d/low${w}`);
      await writeFile(union, `/d/low${w + 10}`, `replaced by ${w}`);
    });
    let listings = 0;
    const reader = (async () => {
      for (let k = 0; k < 40; k++) {
        const l = await names(union, '/d');
        expect(new Set(l).size).toBe(l.length); // each name once
        for (const n of l) expect(n.startsWith('.wh.')).toBe(false);
        listings++;
      }
    })();
    await Promise.all([...workers, reader]);
    expect(listings).toBe(40);
    const final = await names(union, '/d');
    const expected: string[] = [];
    for (let w = 0; w < 8; w++) for (let i = 0; i < 15; i++) if (i % 3 !== 0) expected.push(`w${w}-${i}-moved`);
    for (let i = 8; i < 20; i++) expected.push(`low${i}`);
    expect(final).toEqual(expected.sort());
    for (let w = 0; w < 8; w++) expect(await readFile(union, `/d/low${w + 10}`)).toBe(`replaced by ${w}`);
    await expect(union.stat('/d/low3')).rejects.toMatchObject({ code: 'ENOENT' });
    await dispose();
  });
});
