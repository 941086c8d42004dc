import type { Stats } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { candidateOf, comesAfter, isWatchedImageName, mapWithLimit, newestFirst, pickNewest } from './watch-scan.js';

const stats = (ino: number, size: number, mtimeMs: number): Stats => ({ dev: 1, ino, size, mtimeMs }) as Stats;

describe('isWatchedImageName', () => {
  it('takes JPEG, PNG and TIFF names in any case, and leaves hidden and temp files out', () => {
    for (const name of ['stack.jpg', 'STACK.JPEG', 'a.png', 'b.tif', 'c.TIFF', 'tmp_stack.tif', 'temp.png', 'M31.temperature.tif', 'stack.v2.tif']) {
      expect(isWatchedImageName(name), name).toBe(true);
    }
    for (const name of ['.stack.jpg.part', '.hidden.png', 'stack.tif.tmp', 'notes.txt', 'stack.fits', 'jpg', 'stack.jpg~']) {
      expect(isWatchedImageName(name), name).toBe(false);
    }
  });

  it('leaves out temp names that keep an image extension: a .tmp/.temp/.part/.partial part, or a ~', () => {
    for (const name of ['stack.tmp.tif', 'stack.TMP.tiff', 'live.temp.png', 'frame.part.jpg', 'a.b.partial.jpeg', '~stack.tif', 'stack~1.jpg']) {
      expect(isWatchedImageName(name), name).toBe(false);
    }
  });
});

describe('pickNewest and newestFirst', () => {
  it('takes the latest modification time, and the last name on a tie', () => {
    const a = candidateOf('/w/a.png', 'a.png', stats(1, 10, 1000));
    const b = candidateOf('/w/b.png', 'b.png', stats(2, 10, 3000));
    const c = candidateOf('/w/c.png', 'c.png', stats(3, 10, 3000));
    expect(pickNewest([a, b])?.name).toBe('b.png');
    expect(pickNewest([c, a, b])?.name).toBe('c.png');
    expect(pickNewest([])).toBeUndefined();
    expect([a, b, c].sort(newestFirst).map((x) => x.name)).toEqual(['c.png', 'b.png', 'a.png']);
  });
});

describe('candidateOf', () => {
  it('keeps the signature across a rename and changes it with the content', () => {
    const written = candidateOf('/w/stack.tmp.tif', 'stack.tmp.tif', stats(7, 500, 1234.5));
    const renamed = candidateOf('/w/stack.tif', 'stack.tif', stats(7, 500, 1234.5));
    const rewritten = candidateOf('/w/stack.tif', 'stack.tif', stats(7, 501, 1300));
    const replaced = candidateOf('/w/stack.tif', 'stack.tif', stats(8, 500, 1234.5));
    expect(renamed.signature).toBe(written.signature);
    expect(rewritten.signature).not.toBe(written.signature);
    expect(rewritten.identity).toBe(written.identity);
    expect(replaced.identity).not.toBe(written.identity);
  });
});

describe('comesAfter', () => {
  const handledOf = (c: ReturnType<typeof candidateOf>) => ({ name: c.name, signature: c.signature, mtimeMs: c.mtimeMs });
  const published = candidateOf('/w/0005.jpg', '0005.jpg', stats(5, 100, 5000));

  it('takes anything before the first file is handled', () => {
    expect(comesAfter(published, undefined)).toBe(true);
  });

  it('takes newer files, and never an older one or the handled file again, even renamed', () => {
    const handled = handledOf(published);
    expect(comesAfter(candidateOf('/w/0006.jpg', '0006.jpg', stats(6, 100, 6000)), handled)).toBe(true);
    expect(comesAfter(candidateOf('/w/0004.jpg', '0004.jpg', stats(4, 100, 4000)), handled)).toBe(false);
    expect(comesAfter(published, handled)).toBe(false);
    expect(comesAfter(candidateOf('/w/stack.jpg', 'stack.jpg', stats(5, 100, 5000)), handled)).toBe(false);
  });

  it('on a tie of times (coarse clocks), takes a later name or the same name rewritten, not an earlier name', () => {
    const handled = handledOf(published);
    expect(comesAfter(candidateOf('/w/0006.jpg', '0006.jpg', stats(6, 100, 5000)), handled)).toBe(true);
    expect(comesAfter(candidateOf('/w/0005.jpg', '0005.jpg', stats(5, 120, 5000)), handled)).toBe(true);
    expect(comesAfter(candidateOf('/w/0004.jpg', '0004.jpg', stats(4, 100, 5000)), handled)).toBe(false);
  });
});

describe('mapWithLimit', () => {
  it('keeps the order of the items and never runs more than the limit at a time', async () => {
    let running = 0;
    let most = 0;
    const out = await mapWithLimit([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, n));
      running--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30, 0, 60]);
    expect(most).toBe(3);
    expect(await mapWithLimit([], 3, () => Promise.resolve(1))).toEqual([]);
  });
});
