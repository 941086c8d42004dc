import { describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/gateway/server-message.js';
import { BroadcastService } from '../../src/gateway/broadcast.service.js';
import { makeJpeg, type Colour } from '../helpers/images.js';
import {
  canvasColour,
  close,
  fileAreaColour,
  hook,
  imageAreaColour,
  sharedServerAndBrowser,
  makeNoiseJpeg,
  makeSkyJpeg,
  makeSplitJpeg,
  openViewer,
  recordedFrames,
  recordFrames,
  screenshot,
  waitForCanvasColour,
  type OpenedPage,
} from './browser.js';

const RED: Colour = { r: 210, g: 40, b: 40 };
const WHOLE: { x: number; y: number; width: number; height: number } = { x: 0.05, y: 0.05, width: 0.9, height: 0.8 };

describe('the viewer in Chromium, against the real service', () => {
  const suite = sharedServerAndBrowser();

  /** `withoutVersions`: as against a server without versions (ALS's): the plain web_image.jpg path. */
  async function open(options: { withoutVersions?: boolean } = {}): Promise<OpenedPage> {
    const opened = await openViewer(suite.browser, suite.server.baseUrl, undefined, options);
    suite.contexts.push(opened.context);
    return opened;
  }

  async function status(): Promise<{ clients: number; status: string }> {
    const res = await fetch(`${suite.server.baseUrl}/status`);
    return (await res.json()) as { clients: number; status: string };
  }

  it('loads, shows the waiting image and connects', async () => {
    const { page, errors } = await open();

    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.imageSeq > 0, undefined, { timeout: 15_000 });

    // The pixels on the canvas are the waiting image's, not a blank canvas.
    const waiting = Buffer.from(await (await fetch(`${suite.server.baseUrl}/web_image.jpg`)).arrayBuffer());
    const drawn = await imageAreaColour(page);
    expect(drawn).not.toBeNull();
    expect(drawn!.colour.a).toBe(255);
    expect(close(drawn!.colour, await fileAreaColour(waiting), 4)).toBe(true);
    expect({ width: drawn!.width, height: drawn!.height }).toEqual({ width: 1280, height: 720 });

    await expect.poll(async () => (await status()).clients, { timeout: 5000 }).toBe(1);
    expect(await page.textContent('#conn-text')).toBe('live');
    expect(await page.textContent('#stack-size')).toBe('0');
    expect(await page.textContent('#exposure')).toBe('0:00:00');
    // Nothing was published yet (data.json UPDATED null): no age of the waiting image.
    expect(await page.textContent('#updated')).toBe('waiting for the first image');
    // OpenSeadragon's own buttons, from /icons/, including the full-page one.
    expect(await page.locator('#viewer img[src="icons/fullpage_rest.png"]').count()).toBe(1);
    expect(await page.evaluate(() => document.querySelector<HTMLImageElement>('#viewer img[src="icons/fullpage_rest.png"]')!.naturalWidth)).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  });

  it('shows a published image (pixels on the canvas) with the new stack size and exposure', async () => {
    const { page, errors } = await open();
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.imageSeq > 0);
    const before = await hook(page);

    await suite.server.notifier.publish(await makeJpeg({ width: 640, height: 480, color: RED }), { stackSize: 12, exposureSeconds: 3725 });

    await waitForCanvasColour(page, RED);
    await page.waitForFunction(() => document.getElementById('stack-size')?.textContent === '12');
    // Nobody had zoomed: the new image, of another shape than the waiting one, is fitted
    // to the screen (640 x 480 in 1280 x 800: full height, centred).
    const fitted = await page.evaluate(() => {
      const v = window.stackcast.viewer;
      return v.viewport.viewportToViewerElementRectangle(v.world.getItemAt(0)!.getBounds(true));
    });
    expect(fitted.y).toBeCloseTo(0, 0);
    expect(fitted.height).toBeCloseTo(800, 0);
    expect(fitted.x + fitted.width / 2).toBeCloseTo(640, 0);
    expect(await page.textContent('#exposure')).toBe('1:02:05');
    expect(await page.textContent('#updated')).toMatch(/^[0-2] s ago$/);
    const after = await hook(page);
    expect(after.received.new_image).toBe(before.received.new_image + 1);
    expect(after.imagesShown).toBe(before.imagesShown + 1);
    // The old image is gone from OpenSeadragon's world, not just hidden.
    expect(after.worldItems).toBe(1);
    expect(errors).toEqual([]);
  });

  it('keeps a zoomed-in view zoomed (same zoom, same place) when a new image arrives', async () => {
    const { page, errors } = await open();
    const A: Colour = { r: 30, g: 190, b: 60 };
    const B: Colour = { r: 40, g: 60, b: 200 };
    const C: Colour = { r: 230, g: 200, b: 40 };
    const D: Colour = { r: 200, g: 40, b: 200 };
    await suite.server.notifier.publish(await makeSplitJpeg(800, 600, A, B));
    await page.waitForFunction(() => window.stackcast?.state === 'live');
    // Home view: both halves on screen.
    await waitForCanvasColour(page, A, { box: { x: 0.3, y: 0.45, width: 0.05, height: 0.1 } });
    await waitForCanvasColour(page, B, { box: { x: 0.65, y: 0.45, width: 0.05, height: 0.1 } });

    // Zoom 4x into the middle of the left half (image 800 x 600 -> viewport 1 x 0.75).
    await page.evaluate(() => {
      const { viewport } = window.stackcast.viewer;
      viewport.panTo(new window.OpenSeadragon.Point(0.25, 0.375), true);
      viewport.zoomTo(4, undefined, true);
    });
    await waitForCanvasColour(page, A, { box: WHOLE });
    const view = await page.evaluate(() => {
      const { viewport } = window.stackcast.viewer;
      return { zoom: viewport.getZoom(true), center: viewport.getCenter(true) };
    });
    expect(view.zoom).toBeCloseTo(4, 6);

    await suite.server.notifier.publish(await makeSplitJpeg(800, 600, C, D));

    // The whole screen is now the new image's left half: still zoomed, at the same place.
    await waitForCanvasColour(page, C, { box: WHOLE });
    const after = await page.evaluate(() => {
      const { viewport } = window.stackcast.viewer;
      return { zoom: viewport.getZoom(true), center: viewport.getCenter(true) };
    });
    expect(after.zoom).toBeCloseTo(view.zoom, 6);
    expect(after.center.x).toBeCloseTo(view.center.x, 6);
    expect(after.center.y).toBeCloseTo(view.center.y, 6);
    expect(errors).toEqual([]);
  });

  it('ends with the last of five images published in quick succession, never going back, never blank', async () => {
    const { page, errors } = await open({ withoutVersions: true });
    const start: Colour = { r: 128, g: 128, b: 128 };
    await suite.server.notifier.publish(await makeJpeg({ width: 1200, height: 900, color: start }), { stackSize: 20 });
    await waitForCanvasColour(page, start);
    // Settled: live (no catch-up load on connect to come) and no load under way.
    await page.waitForFunction(() => window.stackcast.state === 'live' && !window.stackcast.busy);
    const colours: Colour[] = [
      { r: 220, g: 30, b: 30 },
      { r: 30, g: 220, b: 30 },
      { r: 30, g: 30, b: 220 },
      { r: 220, g: 220, b: 30 },
      { r: 30, g: 220, b: 220 },
    ];
    const jpegs = await Promise.all(colours.map((color) => makeJpeg({ width: 3000, height: 2250, color })));
    const messagesBefore = (await hook(page)).received.new_image;

    // The first download (for the first message) gets the first image's bytes, but only
    // delivers them once the page has received all five messages, as on a slow link: the
    // four others then arrive during a load, whatever the speed of this machine.
    const imageRequests: string[] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/web_image.jpg*', async (route) => {
      imageRequests.push(route.request().url());
      if (imageRequests.length > 1) {
        await route.continue();
        return;
      }
      const response = await route.fetch();
      await released;
      await route.fulfill({ response });
    });
    await recordFrames(page);

    for (const [i, jpeg] of jpegs.entries()) {
      await suite.server.notifier.publish(jpeg, { stackSize: 21 + i, exposureSeconds: 60 * (21 + i) });
    }
    await page.waitForFunction((n) => window.stackcast.received.new_image === n + 5, messagesBefore, { timeout: 5000 });
    release();

    await waitForCanvasColour(page, colours[4]);
    await page.waitForFunction(() => document.getElementById('stack-size')?.textContent === '25');
    expect(await page.textContent('#exposure')).toBe('0:25:00');
    const frames = await recordedFrames(page);

    // Every frame a person could have seen is a complete image: opaque, one of the published ones.
    const palette = [start, ...colours];
    const seen = frames.map((f) => {
      expect(f).not.toBeNull();
      expect(f!.a).toBe(255);
      const index = palette.findIndex((c) => close(c, f!));
      expect(index, `frame ${JSON.stringify(f)} is none of the published images`).toBeGreaterThanOrEqual(0);
      return index;
    });
    // ...in publishing order: never an older image over a newer one.
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]);
    }
    expect(seen.at(-1)).toBe(5);
    await page.waitForFunction(() => !window.stackcast.busy);
    // One load at a time, and the four messages that arrived during it folded into one more
    // load, of the newest image: two downloads for five messages, not five.
    expect(imageRequests).toHaveLength(2);
    // So at most one image was drawn between the start and the newest (the first download's).
    expect(seen.filter((index, i) => index !== seen[i - 1]).length).toBeLessThanOrEqual(3);
    const state = await hook(page);
    expect(state.worldItems).toBe(1);
    expect(errors).toEqual([]);
  });

  it('never shows an older image over a newer one when an older download is slow', async () => {
    const { page, errors } = await open({ withoutVersions: true });
    const start: Colour = { r: 128, g: 128, b: 128 };
    await suite.server.notifier.publish(await makeJpeg({ width: 800, height: 600, color: start }));
    await waitForCanvasColour(page, start);
    const colours: Colour[] = [
      { r: 220, g: 30, b: 30 },
      { r: 30, g: 220, b: 30 },
      { r: 30, g: 30, b: 220 },
    ];
    const jpegs = await Promise.all(colours.map((color) => makeJpeg({ width: 800, height: 600, color })));

    // The first image download after this point gets the bytes of that moment (the first
    // image), but only delivers them once the later images are published: a slow phone link.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held!: () => void;
    const heldStarted = new Promise<void>((resolve) => (held = resolve));
    let holding = true;
    await page.route('**/web_image.jpg*', async (route) => {
      if (!holding) {
        await route.continue();
        return;
      }
      holding = false;
      const response = await route.fetch();
      held();
      await released;
      await route.fulfill({ response });
    });
    await recordFrames(page);
    const messagesBefore = (await hook(page)).received.new_image;

    await suite.server.notifier.publish(jpegs[0], { stackSize: 41 });
    await heldStarted;
    await suite.server.notifier.publish(jpegs[1], { stackSize: 42 });
    await suite.server.notifier.publish(jpegs[2], { stackSize: 43 });
    await page.waitForFunction((n) => window.stackcast.received.new_image === n + 3, messagesBefore, { timeout: 5000 });
    release();

    await waitForCanvasColour(page, colours[2]);
    await page.waitForFunction(() => !window.stackcast.busy);
    // Settled: the newest image, and nothing older drawn after it at any frame.
    expect(close((await canvasColour(page))!, colours[2])).toBe(true);
    expect(await page.textContent('#stack-size')).toBe('43');
    const palette = [start, ...colours];
    const seen = (await recordedFrames(page)).map((f) => palette.findIndex((c) => f !== null && f.a === 255 && close(c, f)));
    expect(seen).not.toContain(-1);
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]);
    }
    expect(errors).toEqual([]);
  });

  it('finishes an image download that takes longer than 30 s on a slow link, without starting it over', async () => {
    const { page, errors } = await open({ withoutVersions: true });
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.imageSeq > 0 && !window.stackcast.busy);
    const colour: Colour = { r: 190, g: 80, b: 140 };
    const jpeg = await makeNoiseJpeg(2200, 1500, colour);
    // A phone at the edge of a crowded access point: 50 KB/s. The noise hardly compresses,
    // so the download takes 35-40 s: longer than the 30 s the whole download used to be allowed.
    const throughput = 50 * 1024;
    expect(jpeg.length / throughput).toBeGreaterThan(34);
    expect(jpeg.length / throughput).toBeLessThan(40);
    const want = await fileAreaColour(jpeg);
    const before = await hook(page);
    const imageRequests: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/web_image.jpg')) {
        imageRequests.push(request.url());
      }
    });

    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: throughput, uploadThroughput: throughput });
    try {
      const began = Date.now();
      await suite.server.notifier.publish(jpeg, { stackSize: 77, exposureSeconds: 77 * 60 });
      await page.waitForFunction((n) => window.stackcast.imagesShown > n, before.imagesShown, { timeout: 70_000, polling: 250 });
      const took = Date.now() - began;
      // The emulation really was that slow: the old 30 s limit would have aborted this download.
      expect(took).toBeGreaterThan(32_000);
      // The noise image's own pixels (its mean colour, at its size) on the canvas.
      await expect
        .poll(async () => {
          const drawn = await imageAreaColour(page);
          return drawn !== null && drawn.colour.a === 255 && drawn.width === 2200 && drawn.height === 1500 && close(drawn.colour, want, 6);
        }, { timeout: 10_000 })
        .toBe(true);
      expect(await page.textContent('#stack-size')).toBe('77');
      // One download, finished: not aborted and started again.
      expect(imageRequests).toHaveLength(1);
      expect((await hook(page)).worldItems).toBe(1);
    } finally {
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
      await cdp.detach();
    }
    expect(errors).toEqual([]);
  }, 90_000);

  it('ignores message types it does not know, and extra fields', async () => {
    const { page, errors } = await open();
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.imageSeq > 0);
    const before = await hook(page);
    const colourBefore = await canvasColour(page);
    const broadcast = suite.server.app.get(BroadcastService);

    broadcast.broadcast({ type: 'telescope_parked', at: 'zenith' } as unknown as ServerMessage);
    broadcast.broadcast({ type: 'new_image', reason: 'test' } as unknown as ServerMessage);

    await page.waitForFunction((n) => window.stackcast.received.new_image === n + 1, before.received.new_image);
    const after = await hook(page);
    expect(after.received.ignored).toBe(before.received.ignored + 1);
    expect(after.state).toBe('live');
    // Nothing changed on disk: the new_image costs a 304, and the picture stays.
    expect(after.imagesShown).toBe(before.imagesShown);
    expect(close((await canvasColour(page))!, colourBefore!, 2)).toBe(true);
    expect(errors).toEqual([]);
  });

  it('shows "stream stopped" over the last image on STOP, and comes back live by itself on START with the image published meanwhile', async () => {
    const { page, errors } = await open();
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.imageSeq > 0);
    const sky = await makeSkyJpeg();
    const skyColour = await fileAreaColour(sky);
    const seq = (await hook(page)).imageSeq;
    await suite.server.notifier.publish(sky, { stackSize: 30, exposureSeconds: 1800 });
    await page.waitForFunction((n) => window.stackcast.imageSeq > n && !window.stackcast.busy, seq);
    // Drawn at the next animation frame after the swap.
    await expect.poll(async () => close((await imageAreaColour(page))!.colour, skyColour, 4)).toBe(true);
    const before = await hook(page);

    await suite.server.lifecycle.stop();

    await page.waitForFunction(() => window.stackcast.state === 'stopped');
    await expect.poll(() => page.isVisible('#stopped')).toBe(true);
    expect(await page.textContent('#stopped .banner-title')).toBe('Stream stopped');
    expect(await page.textContent('#conn-text')).toMatch(/^stopped/);
    // The last image stays on the canvas under the banner.
    expect(close((await imageAreaColour(page))!.colour, skyColour, 4)).toBe(true);
    await screenshot(page, 'stopped');

    const away: Colour = { r: 240, g: 120, b: 20 };
    await suite.server.notifier.publish(await makeJpeg({ width: 900, height: 600, color: away }), { stackSize: 31, exposureSeconds: 1860 });
    await suite.server.lifecycle.start();

    // Slow retries while stopped (3 s, then 6 s, at most 10 s): well within 25 s.
    await page.waitForFunction(() => window.stackcast.state === 'live', undefined, { timeout: 25_000 });
    await waitForCanvasColour(page, away);
    await page.waitForFunction(() => document.getElementById('stack-size')?.textContent === '31');
    expect(await page.isVisible('#stopped')).toBe(false);
    const after = await hook(page);
    expect(after.connects).toBe(before.connects + 1);
    // Caught up by the fetch on reconnect: no new_image could reach it while away.
    expect(after.received.new_image).toBe(before.received.new_image);
    expect(after.received.disconnect).toBe(before.received.disconnect + 1);
    expect(errors).toEqual([]);
  });

  it('reconnects at once when the page becomes visible again, instead of waiting for the next retry', async () => {
    const { page, errors } = await open();
    await page.waitForFunction(() => window.stackcast?.state === 'live');
    const before = await hook(page);

    await suite.server.lifecycle.stop();
    await page.waitForFunction(() => window.stackcast.state === 'stopped' && window.stackcast.nextRetryAt > 0);
    await suite.server.lifecycle.start();
    const nextRetryAt = (await hook(page)).nextRetryAt;

    // A phone being unlocked: the page turns visible (headless pages always are; fire the event).
    await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));

    await page.waitForFunction((n) => window.stackcast.connects === n + 1, before.connects, { timeout: 5000 });
    const after = await hook(page);
    expect(after.state).toBe('live');
    expect(after.lastConnectedAt).toBeLessThan(nextRetryAt);
    expect(errors).toEqual([]);
  });
});
