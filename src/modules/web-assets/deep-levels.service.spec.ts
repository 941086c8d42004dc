import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempFolder } from '../../../test/helpers/temp-folder.js';
import { resolveImageServerOptions } from '../../config/image-server-options.js';
import { DeepLevels, FROM_MEMORY_PIXELS, isWholeTile } from './deep-levels.service.js';
import { homeLevel, levelSize, topLevel } from './pyramid-levels.js';
import { DEEP_PENDING_FILE, PyramidBuilder } from './pyramid.js';

async function gradient(width: number, height: number, seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) {
    raw[i] = (i * seed + (i >> 7)) & 0xff;
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
}

describe('DeepLevels', () => {
  let folder: { path: string; remove(): Promise<void> };

  beforeEach(async () => {
    folder = await makeTempFolder();
  });

  afterEach(async () => {
    await folder.remove();
  });

  it('the level helpers agree with libvips: 2400×1600 has levels 0-12, level 10 is 600×400, the home level under 700 px', () => {
    expect(topLevel(2400, 1600)).toBe(12);
    expect(levelSize(2400, 1600, 10)).toEqual({ width: 600, height: 400 });
    expect(levelSize(9576, 6388, 11)).toEqual({ width: 1197, height: 799 });
    expect(homeLevel(2400, 1600, 700)).toBe(10);
    expect(homeLevel(9576, 6388, 2048)).toBe(11);
    expect(homeLevel(800, 600, 2048)).toBe(topLevel(800, 600));
  });

  it("a grey image's tiles are grey at every level, home and deep, and its kept pixels one channel; a colour image's stay colour", async () => {
    const options = resolveImageServerOptions({ webFolder: folder.path, homeLevelSize: 300 });
    const pyramids = new PyramidBuilder(options);
    const deep = new DeepLevels(options, pyramids);
    const colour = await gradient(1200, 900, 3);
    const grey = await sharp(colour).toColourspace('b-w').jpeg({ quality: 85 }).toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    for (const [version, jpeg, channels] of [[1, grey, 1], [2, colour, 3]] as const) {
      let kept: number | undefined;
      const prepared = await pyramids.prepare(jpeg, { onPixels: (pixels) => (kept = pixels.raw.channels) });
      expect(kept, `version ${version}`).toBe(channels);
      await prepared.commit(version);
      deep.enqueue(version);
      await deep.idle();
      for (const level of [homeLevel(1200, 900, 300), topLevel(1200, 900)]) {
        const tiles = join(folder.path, 'v', String(version), 'image_files', String(level));
        const first = (await readdir(tiles))[0];
        expect((await sharp(join(tiles, first)).metadata()).channels, `version ${version} level ${level}`).toBe(channels);
      }
    }
  });

  it('cuts the newest version first, drops one pruned before its turn, and leaves no temp folder', async () => {
    const options = resolveImageServerOptions({ webFolder: folder.path, homeLevelSize: 300 });
    const pyramids = new PyramidBuilder(options);
    const deep = new DeepLevels(options, pyramids);
    for (let version = 1; version <= 4; version++) {
      await (await pyramids.prepare(await gradient(1200, 900, version))).commit(version);
      expect(existsSync(join(folder.path, 'v', String(version), DEEP_PENDING_FILE))).toBe(true);
    }
    // 1 starts at once; 2, 3 and 4 wait, and 2 is pruned before its turn.
    [1, 2, 3, 4].forEach((version) => deep.enqueue(version));
    await rm(join(folder.path, 'v', '2'), { recursive: true });
    await deep.idle();

    expect(existsSync(join(folder.path, 'v', '2'))).toBe(false);
    const top = String(topLevel(1200, 900));
    for (const version of [1, 3, 4]) {
      expect(existsSync(join(folder.path, 'v', String(version), DEEP_PENDING_FILE)), `version ${version}`).toBe(false);
      expect((await readdir(join(folder.path, 'v', String(version), 'image_files', top))).length).toBe(6);
    }
    // A level moved in by rename gets a new ctime: 4's came before 3's.
    const moved = async (version: number): Promise<number> => (await stat(join(folder.path, 'v', String(version), 'image_files', top))).ctimeMs;
    expect(await moved(4)).toBeLessThan(await moved(3));
    expect((await readdir(join(folder.path, 'v'))).filter((name) => name.startsWith('.'))).toEqual([]);
  });

  /** Every tile of `levels` under a version, by `<level>/<name>`. */
  async function tiles(version: number, levels: number[]): Promise<Map<string, Buffer>> {
    const found = new Map<string, Buffer>();
    for (const level of levels) {
      const dir = join(folder.path, 'v', String(version), 'image_files', String(level));
      for (const name of await readdir(dir)) {
        found.set(`${level}/${name}`, await readFile(join(dir, name)));
      }
    }
    return found;
  }

  it('a cut from memory (the version announced, its bytes still held) moves in the same tiles as a queued cut from its file; one cut at a time', async () => {
    const options = resolveImageServerOptions({ webFolder: folder.path });
    const pyramids = new PyramidBuilder(options);
    const deep = new DeepLevels(options, pyramids);
    // 6000×4000 (FROM_MEMORY_PIXELS): home levels 0-11 (1500×1000), deep 12 and 13.
    const jpeg = await gradient(6000, 4000, 3);
    expect(6000 * 4000).toBeGreaterThanOrEqual(FROM_MEMORY_PIXELS);

    await (await pyramids.prepare(jpeg)).commit(1);
    expect(deep.fromMemory(1, jpeg, 6000, 4000, false)).toBe(true);
    await (await pyramids.prepare(jpeg)).commit(2);
    // Only one cut at a time: the next version's waits for its turn, from its file.
    expect(deep.fromMemory(2, jpeg, 6000, 4000, false)).toBe(false);
    deep.enqueue(2);
    await deep.idle();

    for (const version of [1, 2]) {
      expect(existsSync(join(folder.path, 'v', String(version), DEEP_PENDING_FILE)), `version ${version}`).toBe(false);
    }
    const fromMemory = await tiles(1, [12, 13]);
    const fromQueue = await tiles(2, [12, 13]);
    expect(fromMemory.size).toBe(Math.ceil(6000 / 510) * Math.ceil(4000 / 510) + Math.ceil(3000 / 510) * Math.ceil(2000 / 510));
    expect([...fromMemory.keys()].sort()).toEqual([...fromQueue.keys()].sort());
    for (const [name, bytes] of fromMemory) {
      expect(bytes.equals(fromQueue.get(name)!), name).toBe(true);
    }
    // Its temp folder is gone: only the two versions are left under v/.
    expect((await readdir(join(folder.path, 'v'))).sort()).toEqual(['1', '2']);
    // A small image (under FROM_MEMORY_PIXELS) is queued, not cut from memory.
    const small = await gradient(3000, 2000, 5);
    await (await pyramids.prepare(small)).commit(3);
    expect(deep.fromMemory(3, small, 3000, 2000, false)).toBe(false);
  }, 60_000);

  it('a deep tile asked for while its cut runs is served from the cut once written whole, before the cut ends: the bytes then moved in', async () => {
    const options = resolveImageServerOptions({ webFolder: folder.path, homeLevelSize: 300 });
    const pyramids = new PyramidBuilder(options);
    const deep = new DeepLevels(options, pyramids);
    await (await pyramids.prepare(await gradient(6000, 4000, 5))).commit(1);
    const top = topLevel(6000, 4000);
    const pendingFile = join(folder.path, 'v', '1', DEEP_PENDING_FILE);

    // The first row of the deepest level is written long before the last.
    const place = await deep.provide({ version: 1, level: top, col: 0, row: 0, ext: 'jpeg' });
    const servedWhile = existsSync(pendingFile);
    expect(place).toMatch(new RegExp(`^\\.build-1-[^/]+/image_files/${top}/0_0\\.jpeg$`));
    const served = await readFile(join(folder.path, 'v', place!));
    expect(servedWhile).toBe(true);
    await deep.idle();

    expect(existsSync(pendingFile)).toBe(false);
    expect(served.equals(await readFile(join(folder.path, 'v', '1', 'image_files', String(top), '0_0.jpeg')))).toBe(true);
    // Once cut, nothing is pending: the tile is the version's own file, served as any other.
    expect(await deep.provide({ version: 1, level: top, col: 1, row: 1, ext: 'jpeg' })).toBeUndefined();
  }, 60_000);

  it('a tile waiting for a cut that shutdown cancels is let go (no tile), not left hanging', async () => {
    const options = resolveImageServerOptions({ webFolder: folder.path, homeLevelSize: 300 });
    const pyramids = new PyramidBuilder(options);
    const deep = new DeepLevels(options, pyramids);
    await (await pyramids.prepare(await gradient(2400, 1600, 1))).commit(1);
    // Version 2 big enough for its cut to outlast the request (about half a second).
    await (await pyramids.prepare(await gradient(6000, 4000, 2))).commit(2);
    deep.enqueue(2);
    // Version 1's cut is queued behind 2's: shutdown clears the queue while its tile waits.
    const asked = deep.provide({ version: 1, level: topLevel(2400, 1600), col: 0, row: 0, ext: 'jpeg' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await deep.onApplicationShutdown();
    const place = await asked;
    expect(place).toBe(join('1', 'image_files', String(topLevel(2400, 1600)), '0_0.jpeg'));
    expect(existsSync(join(folder.path, 'v', place!))).toBe(false);
    expect(existsSync(join(folder.path, 'v', '1', DEEP_PENDING_FILE))).toBe(true);
  }, 60_000);

  it('isWholeTile: a JPEG or WebP tile is whole, no part of it is', async () => {
    for (const ext of ['jpeg', 'webp'] as const) {
      const options = resolveImageServerOptions({ webFolder: join(folder.path, ext), tileFormat: ext });
      await mkdir(options.webFolder);
      await new PyramidBuilder(options).build(1, await gradient(1200, 900, 2));
      const tile = await readFile(join(folder.path, ext, 'v', '1', 'image_files', String(topLevel(1200, 900)), '0_0.' + ext));
      expect(tile.length).toBeGreaterThan(5000);
      const path = join(folder.path, `tile.${ext}`);
      await writeFile(path, tile);
      expect(await isWholeTile(path, ext), ext).toBe(true);
      // Every cut in the headers, then one in 37 through the rest, and the last bytes.
      const cuts = [...Array.from({ length: 1024 }, (_, i) => i), ...Array.from({ length: Math.floor(tile.length / 37) }, (_, i) => 1024 + i * 37), tile.length - 2, tile.length - 1];
      for (const length of cuts.filter((n) => n < tile.length)) {
        await writeFile(path, tile.subarray(0, length));
        expect(await isWholeTile(path, ext), `${ext} cut at ${length} of ${tile.length}`).toBe(false);
      }
    }
    expect(await isWholeTile(join(folder.path, 'missing.jpeg'), 'jpeg')).toBe(false);
  }, 60_000);
});
