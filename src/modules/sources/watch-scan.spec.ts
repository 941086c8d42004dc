import type { Stats } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { candidateOf, isSirilLiveStackFrame, isWatchedImageName, newestFirst, pickNewest } from './watch-scan.js';

const stats = (ino: number, size: number, mtimeMs: number): Stats => ({ dev: 1, ino, size, mtimeMs }) as Stats;

describe('isWatchedImageName', () => {
  it('takes JPEG, PNG, TIFF and FITS names in any case, and leaves hidden and temp files out', () => {
    for (const name of ['stack.jpg', 'STACK.JPEG', 'a.png', 'b.tif', 'c.TIFF', 'tmp_stack.tif', 'temp.png', 'M31.temperature.tif', 'stack.v2.tif', 'stack.fits', 'M42.fit', 'Stacked_M31.FTS']) {
      expect(isWatchedImageName(name), name).toBe(true);
    }
    for (const name of ['.stack.jpg.part', '.hidden.png', 'stack.tif.tmp', 'notes.txt', 'stack.fz', 'jpg', 'stack.jpg~', 'stack.tmp.fit']) {
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

describe('Siril live stacking', () => {
  it('takes the stack live_stack_00001.fit, and leaves out its input frames and their processed copies', () => {
    for (const name of ['live_stack_00001.fit', 'LIVE_STACK_00001.FITS', 'live_stack.fit', 'my_live_stack.fit']) {
      expect(isSirilLiveStackFrame(name), name).toBe(false);
      expect(isWatchedImageName(name), name).toBe(true);
    }
    for (const name of ['live_stack_00002.fit', 'live_stack_00137.fits', 'r_live_stack_00001.fit', 'r_live_stack_00002.fit', 'pp_live_stack_00003.fts']) {
      expect(isSirilLiveStackFrame(name), name).toBe(true);
      expect(isWatchedImageName(name), name).toBe(false);
    }
    expect(isWatchedImageName('live_stack.seq')).toBe(false);
  });
});
