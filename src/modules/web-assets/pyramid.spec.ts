import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeAstroJpeg } from '../../../bench/lib/astro.mjs';
import { difference, homeLevel, stitchLevel } from '../../../bench/lib/dzi.mjs';
import { makeTempFolder } from '../../../test/helpers/temp-folder.js';
import { resolveImageServerOptions } from '../../config/image-server-options.js';
import { shrinkToLevel, topLevel } from './pyramid-levels.js';
import { PyramidBuilder, PyramidInputError } from './pyramid.js';
import { VERSION_FILE, VersionStore } from './version-store.js';

describe('PyramidBuilder', () => {
  let folder: { path: string; remove(): Promise<void> };

  beforeEach(async () => {
    folder = await makeTempFolder();
  });

  afterEach(async () => {
    await folder.remove();
  });

  it('builds a pyramid whose home view on a phone matches the full image scaled to the same size', async () => {
    const source = await makeAstroJpeg(2000, 1500, 3);
    const built = await new PyramidBuilder(resolveImageServerOptions({ webFolder: folder.path })).build(1, source);
    expect(built).toMatchObject({ version: 1, width: 2000, height: 1500 });
    const level = homeLevel(2000, 1500, { cssWidth: 390, cssHeight: 844, dpr: 3 });
    expect(level).toMatchObject({ width: 1000, height: 750 });
    const shown = await stitchLevel(join(folder.path, 'v', '1'), level, 510, 1, 'jpeg');
    const reference = await sharp(source).resize(level.width, level.height, { kernel: 'lanczos3', fit: 'fill' }).raw().toBuffer();
    const { psnr, mae } = difference(shown.raw, reference);
    // Measured about 39 dB and 1.9 levels on 255 for the 12 MP bench image.
    expect(psnr).toBeGreaterThan(35);
    expect(mae).toBeLessThan(3);
    // The same comparison fails for another image: the measure tells images apart.
    const other = await sharp(await makeAstroJpeg(2000, 1500, 4)).resize(level.width, level.height, { kernel: 'lanczos3', fit: 'fill' }).raw().toBuffer();
    expect(difference(shown.raw, other).psnr).toBeLessThan(psnr - 5);
    expect(shown.bytes).toBeLessThan(source.length / 10);
  });

  it('keeps the newest versions and removes what builds of dead processes left', async () => {
    const builder = new PyramidBuilder(resolveImageServerOptions({ webFolder: folder.path, keepVersions: 3 }));
    const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#345' } }).jpeg().toBuffer();
    for (let v = 1; v <= 5; v++) {
      await builder.build(v, jpeg);
    }
    await mkdir(join(folder.path, 'v', '.build-0-999999999-abcd'));
    expect(await builder.prune()).toEqual([1, 2]);
    await builder.idle();
    expect((await readdir(join(folder.path, 'v'))).sort()).toEqual(['3', '4', '5']);
  });

  it("an image encoded here has its home levels cut from the pixels it was encoded from, not from a decode of it: same layout, same picture", async () => {
    // A grey 16-bit stack once stretched: what the converter hands over with its JPEG.
    const width = 2400;
    const height = 1600;
    const data = Buffer.alloc(width * height);
    for (let i = 0, x = 7; i < data.length; i++) {
      x = (x * 16807) % 2147483647;
      data[i] = 40 + ((i % width) >> 4) + (x & 15);
    }
    const pixels = { data, raw: { width, height, channels: 1 as const } };
    const jpeg = await sharp(data, { raw: pixels.raw }).toColourspace('b-w').jpeg({ quality: 90 }).toBuffer();
    const builder = new PyramidBuilder(resolveImageServerOptions({ webFolder: folder.path, homeLevelSize: 700 }));
    await (await builder.prepare(jpeg, { pixels })).commit(1);
    await (await builder.prepare(jpeg)).commit(2);
    const version = (v: number): string => join(folder.path, 'v', String(v));

    expect(await readFile(join(version(1), 'image.dzi'), 'utf8')).toBe(await readFile(join(version(2), 'image.dzi'), 'utf8'));
    const home = 10; // 600×400, under 700 px; 11 and 12 are deep levels
    expect(topLevel(width, height)).toBe(12);
    for (let level = 0; level <= topLevel(width, height); level++) {
      const names = async (v: number): Promise<string[]> => (await readdir(join(version(v), 'image_files', String(level))).catch(() => [])).sort();
      expect(await names(1), `level ${level}`).toEqual(await names(2));
      expect((await names(1)).length > 0, `level ${level}`).toBe(level <= home);
    }
    const level = { level: home, width: 600, height: 400 };
    const fromPixels = await stitchLevel(version(1), level, 510, 1, 'jpeg');
    const fromDecode = await stitchLevel(version(2), level, 510, 1, 'jpeg');
    const reference = await sharp(data, { raw: pixels.raw }).resize(600, 400, { fit: 'fill' }).toColourspace('srgb').raw().toBuffer();
    expect(difference(fromPixels.raw, reference).psnr).toBeGreaterThan(38);
    expect(difference(fromPixels.raw, fromDecode.raw).psnr).toBeGreaterThan(38);

    // The pixels are used, the JPEG not decoded: a scan cut short still gives version 3 its
    // home levels from them, and is refused without them.
    const cut = Buffer.concat([jpeg.subarray(0, jpeg.length / 2), Buffer.from([0xff, 0xd9])]);
    await (await builder.prepare(cut, { pixels })).commit(3);
    expect((await stitchLevel(version(3), level, 510, 1, 'jpeg')).raw.equals(fromPixels.raw)).toBe(true);
    await expect(builder.prepare(cut)).rejects.toThrow();
    // Pixels of another size than the JPEG's are not the JPEG's: refused, nothing left behind.
    const mismatch = builder.prepare(cut, { pixels: { data: data.subarray(0, 600 * 400), raw: { width: 600, height: 400, channels: 1 } } });
    // This service's fault, not the image's (a 500, not a 422 "damaged JPEG").
    await expect(mismatch).rejects.toBeInstanceOf(PyramidInputError);
    await expect(mismatch).rejects.toThrow(/the JPEG is 2400×1600 but the pixels its pyramid was cut from are 600×400/);
    expect((await readdir(join(folder.path, 'v'))).filter((name) => name.startsWith('.'))).toEqual([]);
  });

  it('with the home level shrunk from the pixels, cuts its tiles from it as they are: those of a whole pyramid cut from the pixels', async () => {
    const width = 2401;
    const height = 1603;
    const data = Buffer.alloc(width * height * 3);
    for (let i = 0, x = 7; i < data.length; i++) {
      x = (x * 16807) % 2147483647;
      data[i] = 40 + ((i % (width * 3)) >> 5) + (x & 31);
    }
    const pixels = { data, raw: { width, height, channels: 3 as const } };
    const jpeg = await sharp(data, { raw: pixels.raw }).jpeg({ quality: 90 }).toBuffer();
    const home = 10; // 601×401, under 700 px
    // Every level cut eagerly from the pixels (a home size above the image): the reference.
    await mkdir(join(folder.path, 'whole'));
    const whole = new PyramidBuilder(resolveImageServerOptions({ webFolder: join(folder.path, 'whole'), homeLevelSize: 4096 }));
    await (await whole.prepare(jpeg, { pixels })).commit(1);
    const builder = new PyramidBuilder(resolveImageServerOptions({ webFolder: folder.path, homeLevelSize: 700 }));
    await (await builder.prepare(jpeg, { pixels: { ...pixels, home: shrinkToLevel(pixels, home) } })).commit(1);
    // A home level of another size (made for another home size) is not used: cut as without it.
    await (await builder.prepare(jpeg, { pixels: { ...pixels, home: shrinkToLevel(pixels, home - 1) } })).commit(2);
    await (await builder.prepare(jpeg, { pixels })).commit(3);
    const tiles = async (root: string, level: number): Promise<Map<string, Buffer>> => {
      const folderOf = join(root, 'image_files', String(level));
      const names = (await readdir(folderOf).catch(() => [])).sort();
      return new Map(await Promise.all(names.map(async (name) => [name, await readFile(join(folderOf, name))] as const)));
    };
    for (let level = 0; level <= home; level++) {
      const reference = await tiles(join(folder.path, 'whole', 'v', '1'), level);
      const shrunk = await tiles(join(folder.path, 'v', '1'), level);
      expect([...shrunk.keys()], `level ${level}`).toEqual([...reference.keys()]);
      for (const [name, tile] of shrunk) {
        expect(tile.equals(reference.get(name)!), `level ${level} tile ${name}`).toBe(true);
      }
      expect(await tiles(join(folder.path, 'v', '2'), level), `level ${level}`).toEqual(await tiles(join(folder.path, 'v', '3'), level));
    }
    // The resized home level (version 3) is another picture's tiles: the comparison tells them apart.
    expect((await tiles(join(folder.path, 'v', '3'), home)).get('0_0.jpeg')!.equals((await tiles(join(folder.path, 'v', '1'), home)).get('0_0.jpeg')!)).toBe(false);
    await expect(readdir(join(folder.path, 'v', '1', 'image_files', String(home + 1)))).rejects.toThrow(/ENOENT/);
  });

  it('with the pixels, cuts the home levels while the JPEG is still encoding, then keeps the JPEG once it comes', async () => {
    const width = 2400;
    const height = 1600;
    const data = Buffer.alloc(width * height, 90);
    const pixels = { data, raw: { width, height, channels: 1 as const } };
    const jpeg = await sharp(data, { raw: pixels.raw }).toColourspace('b-w').jpeg({ quality: 90 }).toBuffer();
    const builder = new PyramidBuilder(resolveImageServerOptions({ webFolder: folder.path, homeLevelSize: 700 }));
    let deliver: (bytes: Buffer) => void = () => undefined;
    const encoding = new Promise<Buffer>((resolve) => (deliver = resolve));
    const preparing = builder.prepare(encoding, { pixels });
    // The JPEG is handed over only once the home level's tiles exist: waiting for it first would hang here.
    const homeTiles = async (): Promise<string[]> => {
      for (const name of await readdir(join(folder.path, 'v')).catch(() => [])) {
        const tiles = await readdir(join(folder.path, 'v', name, 'image_files', '10')).catch(() => []);
        if (tiles.length > 0) {
          return tiles;
        }
      }
      return [];
    };
    const deadline = Date.now() + 10_000;
    while ((await homeTiles()).length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect((await homeTiles()).length).toBeGreaterThan(0);
    deliver(jpeg);
    await (await preparing).commit(1);
    expect((await readFile(join(folder.path, 'v', '1', 'image.jpg'))).equals(jpeg)).toBe(true);
    expect(await readFile(join(folder.path, 'v', '1', 'image.dzi'), 'utf8')).toMatch(/Width="2400"[^>]*Height="1600"|Height="1600"[^>]*Width="2400"/);
  });

  it('a JPEG whose encode fails fails the pyramid with its error, and nothing is left behind', async () => {
    const data = Buffer.alloc(800 * 600, 90);
    const builder = new PyramidBuilder(resolveImageServerOptions({ webFolder: folder.path }));
    // Its failure is taken by whoever awaits it, as the converter's JPEG promise is.
    const encoding = Promise.reject(new Error('encoder broke'));
    encoding.catch(() => undefined);
    await expect(builder.prepare(encoding, { pixels: { data, raw: { width: 800, height: 600, channels: 1 } } })).rejects.toThrow('encoder broke');
    expect(await readdir(join(folder.path, 'v'))).toEqual([]);
  });

  it('refuses a damaged image and leaves nothing behind', async () => {
    const builder = new PyramidBuilder(resolveImageServerOptions({ webFolder: folder.path }));
    const jpeg = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#345' } }).jpeg().toBuffer();
    await expect(builder.build(1, jpeg.subarray(0, jpeg.length / 2))).rejects.toThrow();
    expect(await readdir(join(folder.path, 'v'))).toEqual([]);
    const prepared = await builder.prepare(jpeg);
    await prepared.discard();
    expect(await readdir(join(folder.path, 'v'))).toEqual([]);
  });
});

describe('VersionStore', () => {
  let folder: { path: string; remove(): Promise<void> };

  beforeEach(async () => {
    folder = await makeTempFolder();
  });

  afterEach(async () => {
    await folder.remove();
  });

  it('hands out growing versions, persisted before they are returned', async () => {
    const store = new VersionStore({ webFolder: folder.path });
    expect(await store.open()).toBe(0);
    expect(await store.next()).toBe(1);
    expect(await readFile(join(folder.path, VERSION_FILE), 'utf8')).toBe('1\n');
    expect(await store.next()).toBe(2);
    expect(await new VersionStore({ webFolder: folder.path }).open()).toBe(2);
  });

  it('starts above both the file and the highest version folder, whichever is higher', async () => {
    await writeFile(join(folder.path, VERSION_FILE), '7\n');
    await mkdir(join(folder.path, 'v', '12'), { recursive: true });
    await mkdir(join(folder.path, 'v', '0012'), { recursive: true }); // not a version name
    expect(await new VersionStore({ webFolder: folder.path }).next()).toBe(13);
    await writeFile(join(folder.path, VERSION_FILE), 'garbage');
    expect(await new VersionStore({ webFolder: folder.path }).open()).toBe(12);
  });

  it('takes back the last version handed out when it went unused, persisted; never one handed out before another', async () => {
    const store = new VersionStore({ webFolder: folder.path });
    expect(await store.next()).toBe(1);
    expect(await store.next()).toBe(2);
    await store.giveBack(2);
    expect(store.current).toBe(1);
    expect(await readFile(join(folder.path, VERSION_FILE), 'utf8')).toBe('1\n');
    expect(await store.next()).toBe(2);
    expect(await store.next()).toBe(3);
    await store.giveBack(2);
    expect(store.current).toBe(3);
    expect(await new VersionStore({ webFolder: folder.path }).open()).toBe(3);
  });

  it('moves up to a version taken elsewhere, never down', async () => {
    const store = new VersionStore({ webFolder: folder.path });
    await store.advanceTo(40);
    await store.advanceTo(3);
    expect(await store.next()).toBe(41);
    await expect(store.advanceTo(-1)).rejects.toThrow(/integer ≥ 0/);
  });
});
