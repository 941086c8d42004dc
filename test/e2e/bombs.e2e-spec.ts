import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { floatTiffBomb, png16Bomb } from '../fixtures/bombs.mjs';
import { makeJpeg } from '../helpers/images.js';
import { spawnService, type SpawnedService } from '../helpers/spawn-service.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer } from '../helpers/test-server.js';

const TOKEN = 'bomb-test-token-0123456789';
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const GIB = 1024 ** 3;

/** The peak resident memory of a process so far (VmHWM), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]) * 1024;
}

function put(service: SpawnedService, body: Buffer, type: string): Promise<Response> {
  return fetch(`${service.baseUrl}/api/image`, { method: 'PUT', headers: { ...AUTH, 'Content-Type': type }, body: new Uint8Array(body) });
}

async function served(service: SpawnedService): Promise<Buffer> {
  return Buffer.from(await (await fetch(`${service.baseUrl}/web_image.jpg`)).arrayBuffer());
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface WatchCounts {
  imagesPublished: number;
  skippedBy: Record<string, number>;
  lastSkipped: { kind: string; reason: string } | null;
}

async function watchOf(service: SpawnedService): Promise<WatchCounts> {
  return ((await (await fetch(`${service.baseUrl}/status`, { headers: AUTH })).json()) as { watch: WatchCounts }).watch;
}

// 16383² float (1 GB of samples) in 17 KB; sharp's own default limit lets it through.
const floatBomb = floatTiffBomb({ side: 16383 });

describe('decompression bombs against the real process', () => {
  let temp: { path: string; remove(): Promise<void> };
  let pngOverLimit: Buffer;
  let pngUnderLimit: Buffer;
  let previous: Buffer;

  beforeAll(async () => {
    temp = await makeTempFolder('stackcast-bombs-');
    // 16383² (268 MP) is over the default MAX_INPUT_PIXELS; 12000² (144 MP) is under it.
    [pngOverLimit, pngUnderLimit] = await Promise.all([png16Bomb({ width: 16383, height: 16383 }), png16Bomb({ width: 12000, height: 12000 })]);
    previous = await makeJpeg({ width: 320, height: 240 });
  }, 60_000);

  afterAll(async () => {
    await temp.remove();
  });

  describe('with the default pixel limit', () => {
    let service: SpawnedService;
    let watch: string;

    beforeAll(async () => {
      watch = join(temp.path, 'watch');
      await mkdir(watch);
      service = await spawnService({
        WORK_FOLDER: join(temp.path, 'work-default'),
        CONTROL_TOKEN: TOKEN,
        WATCH_PATH: watch,
        WATCH_SETTLE_MS: '200',
        WATCH_POLL_MS: '200',
      }, 30_000);
      expect((await put(service, previous, 'image/jpeg')).status).toBe(200);
    }, 60_000);

    afterAll(async () => {
      await service?.kill();
    });

    it('answers a 17 KB float TIFF of 16383² pixels with 413 naming its size and MAX_INPUT_PIXELS; the previous image stays', async () => {
      const res = await put(service, floatBomb, 'image/tiff');
      const body = (await res.json()) as { message: string };
      expect(res.status).toBe(413);
      expect(body.message).toMatch(/16383×16383/);
      expect(body.message).toMatch(/MAX_INPUT_PIXELS/);
      expect((await served(service)).equals(previous)).toBe(true);
    });

    it('answers a 16-bit PNG of 16383² pixels with 413; the previous image stays', async () => {
      const res = await put(service, pngOverLimit, 'image/png');
      expect(res.status).toBe(413);
      expect(((await res.json()) as { message: string }).message).toMatch(/PNG.*16383×16383.*MAX_INPUT_PIXELS/);
      expect((await served(service)).equals(previous)).toBe(true);
    });

    it('skips the float TIFF dropped into the watched folder (no token needed there) as refused, then takes the next image', async () => {
      await writeFile(join(watch, 'bomb.tif'), floatBomb);
      await until(async () => (await watchOf(service)).skippedBy.refused === 1, 'the bomb to be skipped');
      const status = await watchOf(service);
      expect(status.lastSkipped?.kind).toBe('refused');
      expect(status.lastSkipped?.reason).toMatch(/16383×16383.*MAX_INPUT_PIXELS/);
      expect((await served(service)).equals(previous)).toBe(true);
      const next = await makeJpeg({ width: 320, height: 240, color: { r: 20, g: 20, b: 200 } });
      await writeFile(join(watch, 'next.jpg'), next);
      await until(async () => (await watchOf(service)).imagesPublished === 1, 'the next image to be published');
      expect((await served(service)).equals(next)).toBe(true);
    });

    it('stays alive and small: /status answers and the peak RSS stayed under 1 GiB', async () => {
      expect((await fetch(`${service.baseUrl}/status`)).status).toBe(200);
      expect(service.child.exitCode).toBeNull();
      expect(await peakRss(service.pid)).toBeLessThan(GIB);
    });
  });

  describe('with a pixel limit that lets the bombs through', () => {
    let service: SpawnedService;

    beforeAll(async () => {
      service = await spawnService({
        WORK_FOLDER: join(temp.path, 'work-high'),
        CONTROL_TOKEN: TOKEN,
        MAX_INPUT_PIXELS: '300000000',
      }, 30_000);
    }, 60_000);

    afterAll(async () => {
      await service?.kill();
    });

    it('publishes the float TIFF of 16383² and the 16-bit PNG of 12000² at maxImageSize in under 1 GiB of peak RSS', async () => {
      for (const [bomb, type] of [[floatBomb, 'image/tiff'], [pngUnderLimit, 'image/png']] as const) {
        const res = await put(service, bomb, type);
        expect(res.status, await res.clone().text()).toBe(200);
        const jpeg = await served(service);
        const meta = await sharp(jpeg).metadata();
        expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 4096, 4096]);
      }
      expect(await peakRss(service.pid)).toBeLessThan(GIB);
    }, 120_000);
  });

  it('never reads a watched file larger than MAX_IMAGE_BYTES: skipped as refused, naming the limit; the previous image stays', async () => {
    const watch = join(temp.path, 'watch-bytes');
    await mkdir(watch);
    const server = await startTestServer({ watchPath: watch, watchSettleMs: 200, watchPollIntervalMs: 200, maxImageBytes: 4096 });
    try {
      const small = await makeJpeg({ width: 32, height: 24 });
      await server.notifier.publish(small);
      const big = await sharp({ create: { width: 1200, height: 900, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 60 } } }).jpeg().toBuffer();
      expect(big.length).toBeGreaterThan(4096);
      await writeFile(join(watch, 'big.jpg'), big);
      const status = async (): Promise<WatchCounts> => ((await (await fetch(`${server.baseUrl}/status`)).json()) as { watch: WatchCounts }).watch;
      await until(async () => (await status()).skippedBy.refused === 1, 'the big file to be skipped');
      expect((await status()).lastSkipped?.reason).toBe(`${big.length} bytes is more than the 4096 allowed (MAX_IMAGE_BYTES)`);
      expect(Buffer.from(await (await fetch(`${server.baseUrl}/web_image.jpg`)).arrayBuffer()).equals(small)).toBe(true);
    } finally {
      await server.close();
    }
  });
});
