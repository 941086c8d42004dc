import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { DeepLevels } from '../../src/modules/web-assets/deep-levels.service.js';
import { DEEP_PENDING_FILE } from '../../src/modules/web-assets/pyramid.js';
import { waitUntil } from '../fixtures/sample-images.js';
import { spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/** A picture whose every region differs (gradients across both axes, grain): a tile from the wrong place shows. */
export async function makeGradientJpeg(width: number, height: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const grain = ((x * 7 + y * 13) % 11) - 5;
      data[i] = Math.round((x / width) * 230) + 10 + grain;
      data[i + 1] = Math.round((y / height) * 230) + 10 - grain;
      data[i + 2] = ((x >> 6) + (y >> 6)) % 2 === 0 ? 60 : 180;
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

/** Every tile of a full eager cut (libvips dzsave of the whole decode, the service's tile settings), by `level/name`. */
async function fullCut(jpeg: Buffer, folder: string): Promise<{ dzi: string; tiles: Map<string, Buffer> }> {
  await sharp(jpeg)
    .jpeg({ quality: 80, mozjpeg: false, optimiseCoding: false })
    .tile({ layout: 'dz', size: 510, overlap: 1, container: 'fs' })
    .toFile(join(folder, 'image.dz'));
  return { dzi: await readFile(join(folder, 'image.dzi'), 'utf8'), tiles: await readTiles(join(folder, 'image_files')) };
}

async function readTiles(files: string, levels?: number[]): Promise<Map<string, Buffer>> {
  const tiles = new Map<string, Buffer>();
  for (const level of (await readdir(files)).filter((n) => /^\d+$/.test(n))) {
    if (levels && !levels.includes(Number(level))) {
      continue;
    }
    for (const name of (await readdir(join(files, level))).filter((n) => n.endsWith('.jpeg'))) {
      tiles.set(`${level}/${name}`, await readFile(join(files, level, name)));
    }
  }
  return tiles;
}

function only(tiles: Map<string, Buffer>, levels: number[]): Map<string, Buffer> {
  return new Map([...tiles].filter(([key]) => levels.includes(Number(key.split('/')[0]))));
}

/** Each deep tile over HTTP, all at once, as a zoomed-in phone asks: status, cache header, bytes. */
async function fetchTiles(baseUrl: string, version: number, names: string[]): Promise<Map<string, { status: number; cache: string | null; body: Buffer }>> {
  const answers = await Promise.all(
    names.map(async (name) => {
      const res = await fetch(`${baseUrl}/v/${version}/image_files/${name}`, { signal: AbortSignal.timeout(60_000) });
      return [name, { status: res.status, cache: res.headers.get('cache-control'), body: Buffer.from(await res.arrayBuffer()) }] as const;
    }),
  );
  return new Map(answers);
}

describe('home levels first, deep levels after new_image', () => {
  let servers: TestServer[] = [];
  let spawned: SpawnedService[] = [];
  let temps: { remove(): Promise<void> }[] = [];

  afterEach(async () => {
    await Promise.all(spawned.map((s) => s.kill('SIGKILL')));
    await Promise.all(servers.map((s) => s.close()));
    await Promise.all(temps.map((t) => t.remove()));
    servers = [];
    spawned = [];
    temps = [];
  });

  it('announces with the home levels and the full-size descriptor; every deep tile, asked at once or cut in the background, is byte-identical to a full eager cut', async () => {
    const temp = await makeTempFolder();
    temps.push(temp);
    // 2400×1600: levels 0-12; home levels 0-10 (600×400), deep 11 and 12.
    const jpeg = await makeGradientJpeg(2400, 1600);
    const reference = await fullCut(jpeg, temp.path);
    const server = await startTestServer({ homeLevelSize: 700 });
    servers.push(server);
    const deep = server.app.get(DeepLevels);

    await server.notifier.publish(jpeg, { stackSize: 1 });
    const folder = join(server.webFolder, 'v', '1');
    // Eager: every home tile was on disk when new_image went out, the same set of tiles as the full cut's.
    const home = await readTiles(join(folder, 'image_files'), [...Array(11).keys()]);
    expect([...home.keys()].sort()).toEqual([...only(reference.tiles, [...Array(11).keys()]).keys()].sort());
    expect(await (await fetch(`${server.baseUrl}/v/1/image.dzi`)).text()).toBe(reference.dzi);

    const deepTiles = only(reference.tiles, [11, 12]);
    const answers = await fetchTiles(server.baseUrl, 1, [...deepTiles.keys()]);
    for (const [name, want] of deepTiles) {
      const got = answers.get(name)!;
      expect(got.status, name).toBe(200);
      expect(got.cache, name).toBe('public, max-age=31536000, immutable');
      expect(got.body.equals(want), `${name} differs from the full cut's`).toBe(true);
    }
    await deep.idle();
    expect(existsSync(join(folder, DEEP_PENDING_FILE))).toBe(false);
    const onDisk = await readTiles(join(folder, 'image_files'), [11, 12]);
    expect([...onDisk.keys()].sort()).toEqual([...deepTiles.keys()].sort());
    for (const [name, want] of deepTiles) {
      expect(onDisk.get(name)!.equals(want), `${name} on disk differs from the full cut's`).toBe(true);
    }
    // Beyond the pyramid: still a plain 404, never cached as immutable.
    const outside = await fetch(`${server.baseUrl}/v/1/image_files/12/9_9.jpeg`);
    expect(outside.status).toBe(404);
    expect(outside.headers.get('cache-control')).not.toMatch(/immutable/);
  });

  it('refuses a damaged large JPEG from its reduced decode, and leaves nothing under v/', async () => {
    const server = await startTestServer({ homeLevelSize: 700 });
    servers.push(server);
    const jpeg = await makeGradientJpeg(2400, 1600);
    const spliced = Buffer.concat([jpeg.subarray(0, Math.floor(jpeg.length / 2)), Buffer.from([0xff, 0xd9])]);
    await expect(server.notifier.publish(spliced)).rejects.toThrow(/damaged|corrupt|premature|JPEG/i);
    expect((await readdir(join(server.webFolder, 'v')).catch(() => [])).filter((n) => /^\d+$/.test(n))).toEqual([]);
  });

  it('kill -9 during a background cut: after a restart no half-written tile is served and the deep levels are completed', async () => {
    const temp = await makeTempFolder();
    temps.push(temp);
    const work = join(temp.path, 'work');
    // 6000×4000: home levels 0-11 (1500×1000), deep 12 and 13 cut after new_image.
    const jpeg = await makeGradientJpeg(6000, 4000);
    const env = { WORK_FOLDER: work, MAX_IMAGE_SIZE: '8000', RESUME: 'always' };
    const first = await spawnService(env);
    spawned.push(first);
    const put = await fetch(`${first.baseUrl}/api/image?stackSize=1`, { method: 'PUT', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(jpeg) });
    // The deep cut starts with the home levels' and runs on after new_image: its temp folder is there.
    const v = join(work, 'v');
    await waitUntil(async () => (await readdir(v).catch(() => [] as string[])).some((n) => n.startsWith('.build-1-')), 30_000, 'the background cut');
    first.child.kill('SIGKILL');
    await first.exited;
    expect(put.status).toBe(200);
    expect(existsSync(join(v, '1', DEEP_PENDING_FILE)), 'the cut had finished before the kill').toBe(true);

    const reference = await fullCut(jpeg, temp.path);
    const deepTiles = only(reference.tiles, [12, 13]);
    const second = await spawnService(env);
    spawned.push(second);
    const answers = await fetchTiles(second.baseUrl, 1, [...deepTiles.keys()]);
    for (const [name, want] of deepTiles) {
      expect(answers.get(name)!.status, name).toBe(200);
      expect(answers.get(name)!.body.equals(want), `${name} served after the restart differs from the full cut's`).toBe(true);
    }
    await waitUntil(() => !existsSync(join(v, '1', DEEP_PENDING_FILE)), 60_000, 'the deep levels to be completed');
    const onDisk = await readTiles(join(v, '1', 'image_files'), [12, 13]);
    expect([...onDisk.keys()].sort()).toEqual([...deepTiles.keys()].sort());
    for (const [name, want] of deepTiles) {
      expect(onDisk.get(name)!.equals(want), `${name} on disk differs from the full cut's`).toBe(true);
    }
  }, 180_000);
});
