import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeAstroJpeg } from '../../bench/lib/astro.mjs';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { hook, launchBrowser, meanAbsoluteError, openViewer, screenshot, shownAt, sourceAt, type OpenedPage } from './browser.js';

const PHONE = { width: 390, height: 844 };
const PHONE_OPTIONS = { deviceScaleFactor: 3, isMobile: true, hasTouch: true };
const DESKTOP = { width: 1280, height: 800 };

/** Waits until the viewer shows `version`, fully drawn, with nothing else loading. */
async function waitForVersion(page: Page, version: number, timeout = 20_000): Promise<void> {
  await page.waitForFunction((v) => window.stackcast.version === v && !window.stackcast.busy && window.stackcast.worldItems === 1, version, {
    timeout,
  });
}

/** Per-frame mean and standard deviation of the luminance in the middle of the canvas. */
async function startFrameStats(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __stats: Array<{ mean: number; sd: number; a: number }>; __on: boolean };
    w.__stats = [];
    w.__on = true;
    const step = (): void => {
      if (!w.__on) {
        return;
      }
      const canvas = document.querySelector<HTMLCanvasElement>('#viewer .openseadragon-canvas canvas');
      const ctx = canvas?.getContext('2d', { willReadFrequently: true });
      if (canvas && ctx && canvas.width > 0) {
        const d = ctx.getImageData(Math.floor(canvas.width * 0.4), Math.floor(canvas.height * 0.4), Math.floor(canvas.width * 0.2), Math.floor(canvas.height * 0.2)).data;
        let sum = 0;
        let sq = 0;
        let alpha = 255;
        const n = d.length / 4;
        for (let i = 0; i < d.length; i += 4) {
          const y = 0.2126 * d[i] + 0.7152 * d[i + 1] + 0.0722 * d[i + 2];
          sum += y;
          sq += y * y;
          alpha = Math.min(alpha, d[i + 3]);
        }
        const mean = sum / n;
        w.__stats.push({ mean, sd: Math.sqrt(Math.max(0, sq / n - mean * mean)), a: alpha });
      }
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
}

function stopFrameStats(page: Page): Promise<Array<{ mean: number; sd: number; a: number }>> {
  return page.evaluate(() => {
    const w = window as unknown as { __stats: Array<{ mean: number; sd: number; a: number }>; __on: boolean };
    w.__on = false;
    return w.__stats;
  });
}

/**
 * Random grey 4 x 4 blocks: detail that only the full-resolution level can show (grey, so
 * the tiles' chroma subsampling does not blur it).
 */
function detailJpeg(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let state = 99;
  const bw = Math.ceil(width / 4);
  const blocks = new Uint8Array(bw * Math.ceil(height / 4));
  for (let i = 0; i < blocks.length; i++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    blocks[i] = (state >>> 16) & 0xff;
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      raw.fill(blocks[(y >> 2) * bw + (x >> 2)], (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer();
}

/** Vertical stripes (8 px period) of `colour` on black: any blur shows as a lower spread. */
function stripes(width: number, height: number, colour: [number, number, number]): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (x % 8 < 4) {
        raw.set(colour, (y * width + x) * 3);
      }
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
}

describe('the viewer opens versions (Deep Zoom tiles), in Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let astro: Buffer[];
  const contexts: BrowserContext[] = [];

  async function open(viewport: { width: number; height: number }, options = {}): Promise<OpenedPage> {
    const opened = await openViewer(browser, server.baseUrl, viewport, options);
    contexts.push(opened.context);
    return opened;
  }

  async function publish(image: Buffer): Promise<number> {
    await server.notifier.publish(image);
    return (await (await fetch(`${server.baseUrl}/status`)).json() as { version: number }).version;
  }

  beforeAll(async () => {
    [server, browser, astro] = await Promise.all([startTestServer(), launchBrowser(), Promise.all([1, 2].map((seed) => makeAstroJpeg(4000, 3000, seed)))]);
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('a phone (390x844 at 3x) fetches only the home-level tiles of an update, not the 12 MP JPEG', async () => {
    const first = await publish(astro[0]);
    const { page, errors } = await open(PHONE, PHONE_OPTIONS);
    await waitForVersion(page, first);

    const fetched: Array<{ path: string; bytes: number }> = [];
    const reading: Array<Promise<unknown>> = [];
    page.on('response', (response) => {
      const path = new URL(response.url()).pathname;
      if (path !== '/data.json') {
        reading.push(response.body().then((body) => fetched.push({ path, bytes: body.length })));
      }
    });
    const version = await publish(astro[1]);
    await waitForVersion(page, version);
    await Promise.all(reading);

    // The home level on a 3x phone: 1000 x 750 (level 10 of 4000 x 3000), all of its tiles
    // (2 x 2 of 510 px), and the descriptor; nothing deeper, no web_image.jpg. Coarser
    // levels may be fetched as a stand-in while level 10 loads (one small tile).
    const levelFolder = join(server.webFolder, 'v', String(version), 'image_files', '10');
    const tiles = (await readdir(levelFolder)).sort();
    expect(tiles).toEqual(['0_0.jpeg', '0_1.jpeg', '1_0.jpeg', '1_1.jpeg']);
    const paths = fetched.map((f) => f.path);
    expect(paths).toContain(`/v/${version}/image.dzi`);
    for (const tile of tiles) {
      expect(paths).toContain(`/v/${version}/image_files/10/${tile}`);
    }
    for (const path of paths.filter((p) => p !== `/v/${version}/image.dzi`)) {
      expect(path).toMatch(new RegExp(`^/v/${version}/image_files/([0-9]|10)/\\d+_\\d+\\.jpeg$`));
    }
    expect(new Set(paths).size).toBe(paths.length); // nothing fetched twice
    let onDisk = 0;
    for (const path of paths) {
      onDisk += (await stat(join(server.webFolder, path))).size;
    }
    const bytes = fetched.reduce((n, f) => n + f.bytes, 0);
    expect(bytes).toBe(onDisk);
    expect(bytes).toBeLessThan(300 * 1024);
    expect(bytes).toBeLessThan(astro[1].length / 10);
    await screenshot(page, 'versions-phone-home');
    expect(errors).toEqual([]);
  });

  it('zoomed to the deepest level, the canvas shows the source pixels of that region', async () => {
    const detail = await detailJpeg(4000, 3000);
    const version = await publish(detail);
    const { page, errors } = await open(DESKTOP);
    await waitForVersion(page, version);
    const deepTiles: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes(`/v/${version}/image_files/12/`)) {
        deepTiles.push(request.url());
      }
    });
    // One image pixel per screen pixel, centred on image pixel (2000, 1500).
    await page.evaluate(() => {
      const { viewport } = window.stackcast.viewer as unknown as {
        viewport: { imageToViewportZoom(z: number): number; zoomTo(z: number, p?: unknown, now?: boolean): void; panTo(p: unknown, now?: boolean): void };
      };
      viewport.zoomTo(viewport.imageToViewportZoom(1), undefined, true);
      viewport.panTo(new window.OpenSeadragon.Point(2000 / 4000, 1500 / 4000), true);
    });
    await expect.poll(() => deepTiles.length).toBeGreaterThan(0);
    await page.waitForFunction(() => {
      const item = window.stackcast.viewer.world.getItemAt(0) as unknown as { getFullyLoaded(): boolean } | undefined;
      return item?.getFullyLoaded() === true;
    });
    // Where image pixel (1900, 1400) is on screen, then a 200 x 200 crop there.
    const shown = await shownAt(page, 1900, 1400);
    const crop = (left: number, top: number): Promise<Buffer> => sourceAt(detail, left, top);
    const mae = meanAbsoluteError;
    const right = mae(shown, await crop(1900, 1400));
    // The same comparison against a region 7 pixels off, and against the home level blown up:
    // the canvas matches the exact source pixels, far better than either.
    const shifted = mae(shown, await crop(1907, 1407));
    const home = await sharp(detail).resize(1000, 750).toBuffer();
    const blurred = await sharp(home).resize(4000, 3000, { kernel: 'cubic' }).extract({ left: 1900, top: 1400, width: 200, height: 200 }).raw().toBuffer();
    const fromHome = mae(shown, blurred);
    await screenshot(page, 'versions-deepest-zoom');
    expect(right).toBeLessThan(12);
    expect(right * 3).toBeLessThan(shifted);
    expect(right * 3).toBeLessThan(fromHome);
    expect(errors).toEqual([]);
  });

  it('swaps versions without a blank or blurred frame', async () => {
    const red = await stripes(2400, 1600, [230, 40, 40]);
    const green = await stripes(2400, 1600, [40, 230, 40]);
    const before = await publish(red);
    const { page, errors } = await open(DESKTOP);
    await waitForVersion(page, before);
    await startFrameStats(page);
    const after = await publish(green);
    await waitForVersion(page, after);
    // A few frames of the settled new version.
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    const frames = await stopFrameStats(page);
    expect(frames.length).toBeGreaterThan(2);
    const settledOld = frames[0];
    const settledNew = frames.at(-1)!;
    // The old version was complete when recording began: no sharper frame of it came later.
    expect(Math.max(...frames.filter((f) => Math.abs(f.mean - settledOld.mean) < 4).map((f) => f.sd))).toBeLessThan(settledOld.sd * 1.1);
    expect(Math.abs(settledOld.mean - settledNew.mean)).toBeGreaterThan(30);
    for (const f of frames) {
      expect(f.a).toBe(255);
      const old = Math.abs(f.mean - settledOld.mean) < 4 && f.sd > settledOld.sd * 0.8;
      const next = Math.abs(f.mean - settledNew.mean) < 4 && f.sd > settledNew.sd * 0.8;
      expect(old || next, `frame ${JSON.stringify(f)} is neither image, complete`).toBe(true);
    }
    // Old frames, then new ones: one swap, never back.
    const firstNew = frames.findIndex((f) => Math.abs(f.mean - settledNew.mean) < 4);
    expect(frames.slice(firstNew).every((f) => Math.abs(f.mean - settledNew.mean) < 4)).toBe(true);
    expect(errors).toEqual([]);
  });

  it('a version removed while a phone shows it does not break the phone; the next one loads', async () => {
    const version = await publish(astro[0]);
    const { page, errors } = await open(PHONE, PHONE_OPTIONS);
    await waitForVersion(page, version);
    // Gone from the server while shown (pruned after a burst of publishes this phone missed).
    await rm(join(server.webFolder, 'v', String(version)), { recursive: true, force: true });
    expect((await fetch(`${server.baseUrl}/v/${version}/image.dzi`)).status).toBe(404);
    // Zooming in asks for deeper tiles, which now 404: what is drawn stays on screen.
    const refused = page.waitForResponse((r) => r.status() === 404 && r.url().includes(`/v/${version}/image_files/`));
    await page.evaluate(() => window.stackcast.viewer.viewport.zoomTo(6, undefined, true));
    await refused;
    const drawn = await page.evaluate(() => {
      const canvas = document.querySelector<HTMLCanvasElement>('#viewer .openseadragon-canvas canvas')!;
      const d = canvas.getContext('2d')!.getImageData(canvas.width / 2 - 20, canvas.height / 2 - 20, 40, 40).data;
      let alpha = 255;
      for (let i = 3; i < d.length; i += 4) {
        alpha = Math.min(alpha, d[i]);
      }
      return alpha;
    });
    expect(drawn).toBe(255);
    expect((await hook(page)).version).toBe(version);

    const next = await publish(astro[1]);
    await waitForVersion(page, next);
    const state = await hook(page);
    expect(state.state).toBe('live');
    expect(errors).toEqual([]);
    // The image really is the new version's pixels (not a blank canvas).
    const png = await page.screenshot();
    const { channels } = await sharp(png).stats();
    expect(Math.max(...channels.slice(0, 3).map((c) => c.max))).toBeGreaterThan(150);
    expect((await readFile(join(server.webFolder, 'v', String(next), 'image.dzi'), 'utf8')).length).toBeGreaterThan(0);
  });
});
