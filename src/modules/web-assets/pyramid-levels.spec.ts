import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempFolder } from '../../../test/helpers/temp-folder.js';
import { homeLevel, homeLevelBelowTop, levelSize, shrinkToLevel, topLevel, type LevelPixels } from './pyramid-levels.js';

/** Noise over a gradient: every 2×2 block different, sums that round both ways. */
function noisy(width: number, height: number, channels: 1 | 3): LevelPixels {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0, x = 12345; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = ((x >>> 24) & 0x7f) + ((i / (width * channels)) & 0x7f);
  }
  return { data, raw: { width, height, channels } };
}

describe('homeLevel and homeLevelBelowTop', () => {
  it('picks the deepest level within the limit; below the top only when the image is larger than the limit', () => {
    // 4240×2832: levels 13 (4240), 12 (2120), 11 (1060 wide).
    expect(topLevel(4240, 2832)).toBe(13);
    expect(homeLevel(4240, 2832, 2048)).toBe(11);
    expect(homeLevelBelowTop(4240, 2832, 2048)).toBe(11);
    expect(levelSize(4240, 2832, 11)).toEqual({ width: 1060, height: 708 });
    // A limit of the image's own long side: the top is the home level.
    expect(homeLevel(4240, 2832, 4240)).toBe(13);
    expect(homeLevelBelowTop(4240, 2832, 4240)).toBeUndefined();
    expect(homeLevelBelowTop(4240, 2832, 4239)).toBe(12);
    // Smaller than the limit, and a 1×1 image (level 0 is its top).
    expect(homeLevelBelowTop(1000, 800, 2048)).toBeUndefined();
    expect(homeLevelBelowTop(1, 1, 2048)).toBeUndefined();
  });
});

describe('shrinkToLevel (the home level of pixels, as dzsave makes it)', () => {
  let folder: { path: string; remove(): Promise<void> };

  beforeEach(async () => {
    folder = await makeTempFolder();
  });

  afterEach(async () => {
    await folder.remove();
  });

  /** Cuts `pixels` as PyramidBuilder does (dzsave, JPEG tiles) into `<name>_files/`; its tiles by level. */
  async function cut(pixels: LevelPixels, name: string): Promise<Map<string, Buffer>> {
    const { data, raw } = pixels;
    const image = sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width: raw.width, height: raw.height, channels: raw.channels } });
    await (raw.channels === 1 ? image.toColourspace('b-w') : image)
      .jpeg({ quality: 90, mozjpeg: false, optimiseCoding: false })
      .tile({ layout: 'dz', size: 254, overlap: 1, container: 'fs' })
      .toFile(join(folder.path, `${name}.dz`));
    const tiles = new Map<string, Buffer>();
    const root = join(folder.path, `${name}_files`);
    for (const level of (await readdir(root)).filter((entry) => /^\d+$/.test(entry))) {
      for (const tile of await readdir(join(root, level))) {
        tiles.set(`${level}/${tile}`, await readFile(join(root, level, tile)));
      }
    }
    return tiles;
  }

  it('takes the mean of each 2×2 block, rounded half up; an odd last row or column is paired with itself', () => {
    // 3×3 grey: blocks (10,11,13,14), (12,12,15,15), (16,17,16,17), (18,18,18,18).
    const pixels = { data: Uint8Array.from([10, 11, 12, 13, 14, 15, 16, 17, 18]), raw: { width: 3, height: 3, channels: 1 as const } };
    expect(topLevel(3, 3)).toBe(2);
    const shrunk = shrinkToLevel(pixels, 1);
    expect(shrunk.raw).toEqual({ width: 2, height: 2, channels: 1 });
    // 48/4 = 12; 54/4 = 13.5 -> 14; 66/4 = 16.5 -> 17; 72/4 = 18.
    expect([...shrunk.data]).toEqual([12, 14, 17, 18]);
    // Each channel of an RGB pixel on its own; the top level is the pixels themselves.
    const rgb = { data: Uint8Array.from([0, 100, 255, 1, 101, 255, 2, 102, 254, 3, 103, 254]), raw: { width: 2, height: 2, channels: 3 as const } };
    expect([...shrinkToLevel(rgb, 0).data]).toEqual([2, 102, 255]);
    expect(shrinkToLevel(rgb, topLevel(2, 2)).data.equals(rgb.data)).toBe(true);
  });

  it.each([
    ['grey, even sides, one level down', 2400, 1600, 1 as const, 1],
    ['RGB, odd sides, one level down', 1201, 803, 3 as const, 1],
    ['grey, odd width and even height, three levels down', 2403, 1598, 1 as const, 3],
    ['RGB, even width and odd height, two levels down', 1000, 601, 3 as const, 2],
  ])('%s: its tiles are byte for byte those of a whole pyramid cut from the full pixels', async (_what, width, height, channels, down) => {
    const full = noisy(width, height, channels);
    const home = topLevel(width, height) - down;
    const shrunk = shrinkToLevel(full, home);
    expect(shrunk.raw).toEqual({ ...levelSize(width, height, home), channels });
    const whole = await cut(full, 'whole');
    const fromShrunk = await cut(shrunk, 'shrunk');
    // Every level from the home one down to 1×1, and nothing deeper.
    expect([...fromShrunk.keys()].sort()).toEqual([...whole.keys()].filter((key) => Number(key.split('/')[0]) <= home).sort());
    for (const [key, tile] of fromShrunk) {
      expect(tile.equals(whole.get(key)!), key).toBe(true);
    }
    // The comparison tells pixels apart: sharp's resize to the same size (a kernel) gives other tiles.
    const { data, raw } = full;
    const resized = await sharp(Buffer.from(data), { raw: { width: raw.width, height: raw.height, channels } })
      .resize(shrunk.raw.width, shrunk.raw.height, { fit: 'fill' })
      .raw()
      .toBuffer();
    const fromResized = await cut({ data: resized, raw: shrunk.raw }, 'resized');
    expect(fromResized.get(`${home}/0_0.jpeg`)!.equals(whole.get(`${home}/0_0.jpeg`)!)).toBe(false);
  });
});
