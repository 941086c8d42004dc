import type { Stats } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { candidateOf, isWatchedImageName, pickNewest } from './watch-scan.js';

const stats = (ino: number, size: number, mtimeMs: number): Stats => ({ dev: 1, ino, size, mtimeMs }) as Stats;

describe('isWatchedImageName', () => {
  it('takes JPEG, PNG and TIFF names in any case, and leaves hidden and temp files out', () => {
    for (const name of ['stack.jpg', 'STACK.JPEG', 'a.png', 'b.tif', 'c.TIFF', 'tmp_stack.tif']) {
      expect(isWatchedImageName(name), name).toBe(true);
    }
    for (const name of ['.stack.jpg.part', '.hidden.png', 'stack.tif.tmp', 'notes.txt', 'stack.fits', 'jpg', 'stack.jpg~']) {
      expect(isWatchedImageName(name), name).toBe(false);
    }
  });
});

describe('pickNewest', () => {
  it('takes the latest modification time, and the last name on a tie', () => {
    const a = candidateOf('/w/a.png', 'a.png', stats(1, 10, 1000));
    const b = candidateOf('/w/b.png', 'b.png', stats(2, 10, 3000));
    const c = candidateOf('/w/c.png', 'c.png', stats(3, 10, 3000));
    expect(pickNewest([a, b])?.name).toBe('b.png');
    expect(pickNewest([c, a, b])?.name).toBe('c.png');
    expect(pickNewest([])).toBeUndefined();
  });
});

describe('candidateOf', () => {
  it('keeps the signature across a rename and changes it with the content', () => {
    const written = candidateOf('/w/stack.tmp.tif', 'stack.tmp.tif', stats(7, 500, 1234.5));
    const renamed = candidateOf('/w/stack.tif', 'stack.tif', stats(7, 500, 1234.5));
    const rewritten = candidateOf('/w/stack.tif', 'stack.tif', stats(7, 501, 1300));
    expect(renamed.signature).toBe(written.signature);
    expect(rewritten.signature).not.toBe(written.signature);
  });
});
