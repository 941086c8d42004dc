import { existsSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempFolder } from '../../../test/helpers/temp-folder.js';
import { resolveImageServerOptions } from '../../config/image-server-options.js';
import { DeepLevels } from './deep-levels.service.js';
import { DEEP_PENDING_FILE, homeLevel, levelSize, PyramidBuilder, topLevel } from './pyramid.js';

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
});
