import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { makeJpeg, type Colour } from '../helpers/images.js';
import { close, meanAbsoluteError, openViewer, recordedFrames, recordFrames, screenshot, sharedServerAndBrowser, shownAt, sourceAt } from './browser.js';

const DESKTOP = { width: 1280, height: 800 };
const WIDTH = 4000;
const HEIGHT = 3000;
/** The canvas box the frames are sampled in (CENTRE of browser.ts): at 1:1 on (2000, 1500), image pixels 1936-2064 × 1460-1540. */
const BOX = { left: 1936, top: 1460, width: 128, height: 80 };

/** Gradients across both axes and an 8-pixel checker: a region from anywhere else, or blurred, shows. */
function detailJpeg(): Promise<Buffer> {
  const raw = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const i = (y * WIDTH + x) * 3;
      // In brightness, not colour alone: the tiles' 4:2:0 chroma would blur a colour checker.
      const checker = ((x >> 3) + (y >> 3)) % 2 === 0 ? 40 : -40;
      raw[i] = 50 + Math.round((x / WIDTH) * 150) + checker;
      raw[i + 1] = 50 + Math.round((y / HEIGHT) * 150) + checker;
      raw[i + 2] = 120 + checker;
    }
  }
  return sharp(raw, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } }).jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer();
}

async function meanOf(jpeg: Buffer, region: typeof BOX): Promise<Colour> {
  const { channels } = await sharp(jpeg).extract(region).stats();
  return { r: channels[0].mean, g: channels[1].mean, b: channels[2].mean };
}

describe('a viewer zoomed in before the deep level of a new version exists (Chromium)', () => {
  const suite = sharedServerAndBrowser();

  it('never shows a blank or wrong region: the old image, then the new one, at 1:1 from its deep tiles, waited for while they are cut', async () => {
    const before = await makeJpeg({ width: WIDTH, height: HEIGHT, color: { r: 220, g: 30, b: 40 } });
    const detail = await detailJpeg();
    await suite.server.notifier.publish(before);
    const opened = await openViewer(suite.browser, suite.server.baseUrl, DESKTOP);
    suite.contexts.push(opened.context);
    const { page, errors } = opened;
    await page.waitForFunction(() => window.stackcast.version === 1 && !window.stackcast.busy, undefined, { timeout: 30_000 });
    // One image pixel per screen pixel, centred on image pixel (2000, 1500): the deepest level (12).
    await page.evaluate(() => {
      const { viewport } = window.stackcast.viewer as unknown as {
        viewport: { imageToViewportZoom(z: number): number; zoomTo(z: number, p?: unknown, now?: boolean): void; panTo(p: unknown, now?: boolean): void };
      };
      viewport.zoomTo(viewport.imageToViewportZoom(1), undefined, true);
      viewport.panTo(new window.OpenSeadragon.Point(2000 / 4000, 1500 / 4000), true);
    });
    const fullyLoaded = (): Promise<unknown> =>
      page.waitForFunction(
        () => (window.stackcast.viewer.world.getItemAt(0) as unknown as { getFullyLoaded(): boolean } | undefined)?.getFullyLoaded() === true,
        undefined,
        { timeout: 30_000 },
      );
    await fullyLoaded();

    // Whether the new version's deep level was still to be cut when the viewer asked for it.
    const pendingAtRequest: boolean[] = [];
    const pending = join(suite.server.webFolder, 'v', '2', 'deep-pending.json');
    page.on('request', (request) => {
      if (request.url().includes('/v/2/image_files/12/')) {
        pendingAtRequest.push(existsSync(pending));
      }
    });
    await recordFrames(page);
    await suite.server.notifier.publish(detail);
    await page.waitForFunction(() => window.stackcast.version === 2 && !window.stackcast.busy, undefined, { timeout: 30_000 });
    await fullyLoaded();
    const frames = await recordedFrames(page);

    expect(pendingAtRequest.length).toBeGreaterThan(0);
    expect(pendingAtRequest[0], 'the deep level existed before the viewer asked: nothing was tested').toBe(true);
    const old = await meanOf(before, BOX);
    const next = await meanOf(detail, BOX);
    expect(close(old, next)).toBe(false);
    expect(frames.length).toBeGreaterThan(2);
    for (const [i, frame] of frames.entries()) {
      expect(frame, `frame ${i}`).not.toBeNull();
      expect(frame!.a, `frame ${i} is not opaque`).toBe(255);
      expect(close(frame!, old) || close(frame!, next), `frame ${i} ${JSON.stringify(frame)} is neither ${JSON.stringify(old)} nor ${JSON.stringify(next)}`).toBe(true);
    }
    expect(close(frames.at(-1)!, next, 6)).toBe(true);

    // The settled view is the new image's exact pixels there, far closer than a 7-pixel shift.
    const shown = await shownAt(page, 1900, 1400);
    const crop = (left: number, top: number): Promise<Buffer> => sourceAt(detail, left, top);
    const mae = meanAbsoluteError;
    const right = mae(shown, await crop(1900, 1400));
    await screenshot(page, 'deep-levels-one-to-one');
    expect(right).toBeLessThan(12);
    expect(right * 3).toBeLessThan(mae(shown, await crop(1907, 1407)));
    expect(errors).toEqual([]);
  }, 120_000);
});
