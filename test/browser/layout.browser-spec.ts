import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import {
  channelStats,
  close,
  fileAreaColour,
  imageAreaColour,
  launchBrowser,
  makeSkyJpeg,
  openViewer,
  screenshot,
  waitForImageShown,
  type OpenedPage,
} from './browser.js';

const PHONE = { width: 390, height: 844 };
const PHONE_OPTIONS = { deviceScaleFactor: 3, isMobile: true, hasTouch: true };

describe('the viewer on screens: desktop, night mode, phone, share', () => {
  let server: TestServer;
  let browser: Browser;
  let sky: Buffer;
  const contexts: BrowserContext[] = [];

  async function open(viewport = { width: 1280, height: 800 }, options = {}): Promise<OpenedPage> {
    const opened = await openViewer(browser, server.baseUrl, viewport, options);
    contexts.push(opened.context);
    await showsSky(opened.page);
    return opened;
  }

  /** Live, with the sky image's pixels on the canvas. */
  async function showsSky(page: Page): Promise<void> {
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.imageSeq > 0, undefined, { timeout: 15_000 });
    await waitForImageShown(page, sky, { width: 1600 });
  }

  async function box(page: Page, selector: string): Promise<{ x: number; y: number; width: number; height: number }> {
    const b = await page.locator(selector).boundingBox();
    expect(b, selector).not.toBeNull();
    return b!;
  }

  beforeAll(async () => {
    [server, browser, sky] = await Promise.all([startTestServer(), launchBrowser(), makeSkyJpeg()]);
    await server.notifier.publish(sky, { stackSize: 48, exposureSeconds: 48 * 30 });
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('desktop: the image in colour, the overlay along the bottom', async () => {
    const { page, errors } = await open();
    await page.waitForFunction(() => /^\d+ s ago$/.test(document.getElementById('updated')?.textContent ?? ''));
    expect(await page.textContent('#stack-size')).toBe('48');
    expect(await page.textContent('#exposure')).toBe('0:24:00');
    expect(await page.textContent('#conn-text')).toBe('live');

    const png = await screenshot(page, 'normal');
    const stats = await channelStats(png);
    // Colour: the blue and pink nebula differ per channel.
    expect(stats.max.b).toBeGreaterThan(150);
    expect(stats.max.g).toBeGreaterThan(150);
    const bar = await box(page, '#bar');
    expect(bar.y + bar.height).toBeCloseTo(800, 0);
    expect(bar.height).toBeLessThan(80);
    expect(errors).toEqual([]);
  });

  it('night mode: red on black for the whole page, image included, remembered after a reload', async () => {
    const { page, errors } = await open();
    expect(await page.getAttribute('#night-toggle', 'aria-pressed')).toBe('false');

    await page.click('#night-toggle');

    expect(await page.evaluate(() => document.documentElement.classList.contains('night'))).toBe(true);
    expect(await page.evaluate(() => localStorage.getItem('stackcast.nightMode'))).toBe('on');
    expect(await page.getAttribute('#night-toggle', 'aria-pressed')).toBe('true');

    await page.reload();
    // Applied before the viewer even starts (no flash of colour on a dark site).
    expect(await page.evaluate(() => document.documentElement.classList.contains('night'))).toBe(true);
    await showsSky(page);

    const png = await screenshot(page, 'night');
    const stats = await channelStats(png);
    // Not a single green or blue pixel anywhere on screen, and a visible red picture.
    expect(stats.max.g).toBeLessThanOrEqual(2);
    expect(stats.max.b).toBeLessThanOrEqual(2);
    expect(stats.max.r).toBeGreaterThan(150);
    expect(stats.mean.r).toBeGreaterThan(8);
    // The canvas itself still holds the real colours: night mode is only how it is shown.
    const drawn = await imageAreaColour(page);
    expect(close(drawn!.colour, await fileAreaColour(sky), 4)).toBe(true);

    // Share in night mode: the dialog (shown above the page) is red on black too.
    await page.click('#share-button');
    await page.waitForFunction(() => document.querySelector<HTMLImageElement>('#share-qr')?.naturalWidth !== 0 && document.querySelector<HTMLImageElement>('#share-qr')!.complete);
    const shared = await channelStats(await screenshot(page, 'night-share'));
    expect(shared.max.g).toBeLessThanOrEqual(2);
    expect(shared.max.b).toBeLessThanOrEqual(2);
    await page.click('#share-dialog button');

    await page.click('#night-toggle');
    expect(await page.evaluate(() => localStorage.getItem('stackcast.nightMode'))).toBe('off');
    const day = await channelStats(await page.screenshot());
    expect(day.max.b).toBeGreaterThan(150);
    expect(errors).toEqual([]);
  });

  it('phone-sized (390 x 844): image across the width, overlay and buttons on screen, pinch zooms', async () => {
    const { page, errors } = await open(PHONE, PHONE_OPTIONS);

    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    const rect = await page.evaluate(() => {
      const v = window.stackcast.viewer;
      return v.viewport.viewportToViewerElementRectangle(v.world.getItemAt(0)!.getBounds(true));
    });
    expect(rect.width).toBeGreaterThan(PHONE.width * 0.75);

    const bar = await box(page, '#bar');
    expect(bar.x).toBeGreaterThanOrEqual(0);
    expect(bar.x + bar.width).toBeLessThanOrEqual(PHONE.width + 0.5);
    expect(bar.y + bar.height).toBeLessThanOrEqual(PHONE.height + 0.5);
    expect(bar.height).toBeLessThan(PHONE.height * 0.2);
    for (const selector of ['#night-toggle', '#share-button', '#stack-size', '#exposure', '#updated', '#conn-text']) {
      const b = await box(page, selector);
      expect(b.x, selector).toBeGreaterThanOrEqual(0);
      expect(b.x + b.width, selector).toBeLessThanOrEqual(PHONE.width + 0.5);
    }
    expect((await box(page, '#share-button')).height).toBeGreaterThanOrEqual(36);
    expect(await page.locator('#viewer img[src="icons/fullpage_rest.png"]').count()).toBe(1);

    await screenshot(page, 'phone');

    // A two-finger pinch on the image zooms in (touch events, as a phone sends them).
    const zoomBefore = await page.evaluate(() => window.stackcast.viewer.viewport.getZoom(true));
    const cdp = await page.context().newCDPSession(page);
    const cx = PHONE.width / 2;
    const cy = 350;
    const points = (d: number) => [
      { x: cx - d, y: cy, id: 1 },
      { x: cx + d, y: cy, id: 2 },
    ];
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: points(30) });
    for (let d = 40; d <= 150; d += 10) {
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: points(d) });
    }
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    await page.waitForFunction((z) => window.stackcast.viewer.viewport.getZoom() > z * 2, zoomBefore, { timeout: 5000 });
    expect(errors).toEqual([]);
  });

  it('Share shows the QR code of /qr.svg, screen-sized, with the address in words', async () => {
    const { page, errors } = await open(PHONE, PHONE_OPTIONS);
    const status = (await (await fetch(`${server.baseUrl}/status`)).json()) as { url: string };

    await page.click('#share-button');

    expect(await page.isVisible('#share-dialog')).toBe(true);
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('#share-qr');
      return !!img && img.complete && img.naturalWidth > 0;
    });
    expect(await page.getAttribute('#share-qr', 'src')).toMatch(/^qr\.svg\?t=\d+$/);
    await page.waitForFunction((url) => document.getElementById('share-url')?.textContent === url, status.url);
    const qr = await box(page, '#share-qr');
    expect(qr.width).toBeGreaterThanOrEqual(PHONE.width * 0.75);
    expect(qr.x).toBeGreaterThanOrEqual(0);
    expect(qr.x + qr.width).toBeLessThanOrEqual(PHONE.width);
    await screenshot(page, 'share');

    await page.click('#share-dialog button');
    expect(await page.isVisible('#share-dialog')).toBe(false);
    expect(errors).toEqual([]);
  });

  it('the full-page button keeps the image and the overlay on screen', async () => {
    const { page, errors } = await open();

    await page.click('#viewer [title="Toggle full page"]');

    await page.waitForFunction(() => window.stackcast.viewer.isFullPage());
    expect(await page.isVisible('#bar')).toBe(true);
    await showsSky(page);
    expect(errors).toEqual([]);
  });
});
