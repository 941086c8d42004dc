import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { sharedServerAndBrowser, openViewer, type OpenedPage } from './browser.js';

const DESKTOP = { width: 1280, height: 800 };
const ENGLISH = JSON.parse(readFileSync(new URL('../../src/modules/web-assets/viewer/i18n-en.json', import.meta.url), 'utf8')) as Record<string, string>;

interface HistoryHook {
  version: number;
  stackSize: number | null;
  scrubVersion: number;
  historyFrames: number;
}

function viewerState(page: Page): Promise<HistoryHook> {
  return page.evaluate(() => {
    const s = window.stackcast as unknown as HistoryHook;
    return { version: s.version, stackSize: s.stackSize, scrubVersion: s.scrubVersion, historyFrames: s.historyFrames };
  });
}

/** Waits until the viewer shows `version` with its metrics and knows `frames` frames of history. */
async function waitForLive(page: Page, version: number, frames = 0): Promise<void> {
  await page.waitForFunction(
    ([v, n]) => {
      const s = window.stackcast as unknown as HistoryHook & { busy: boolean };
      return s.version === v && !s.busy && s.historyFrames >= n;
    },
    [version, frames] as const,
    { timeout: 20_000 },
  );
}

describe('the viewer: object card, Save and the timeline (Chromium)', () => {
  const suite = sharedServerAndBrowser();

  async function open(init?: string): Promise<OpenedPage> {
    const opened = await openViewer(suite.browser, suite.server.baseUrl, DESKTOP);
    suite.contexts.push(opened.context);
    if (init) {
      await opened.page.addInitScript({ content: init });
      await opened.page.reload();
    }
    return opened;
  }

  /** Publishes a small image; resolves with its version. */
  async function publish(stackSize: number, object?: string): Promise<number> {
    const jpeg = await makeJpeg({ width: 320, height: 240, color: { r: 40 + stackSize * 10, g: 60, b: 90 } });
    await suite.server.notifier.publish(jpeg, { stackSize, ...(object ? { object } : {}) });
    return ((await (await fetch(`${suite.server.baseUrl}/status`)).json()) as { version: number }).version;
  }

  it('shows the object card of M 42 (name, type, constellation, distance, light travel time), and hides it without an object', async () => {
    const version = await publish(12, 'M 42');
    const { page, errors } = await open();
    await waitForLive(page, version);
    const card = page.locator('#object-card');
    await card.waitFor({ state: 'visible', timeout: 10_000 });
    const entry = (await (await fetch(`${suite.server.baseUrl}/api/objects/M%2042`)).json()) as { id: string; names: string[]; typeKey: string; constellation: string; distanceLy: number };
    await expect.poll(() => page.locator('#object-name').textContent()).toBe(`${entry.id} · ${entry.names[0]}`);
    expect(await page.locator('#object-type').textContent()).toBe(`${ENGLISH[`type.${entry.typeKey}`]} in ${entry.constellation}`);
    expect(entry.id).toBe('M42');
    const distance = new Intl.NumberFormat('en', { maximumSignificantDigits: 4 }).format(entry.distanceLy);
    expect(await page.locator('#object-distance').textContent()).toBe(`${distance} light-years away`);
    expect(await page.locator('#object-light').textContent()).toBe(`The light you see left it ${distance} years ago`);

    const next = await publish(13);
    await waitForLive(page, next);
    await card.waitFor({ state: 'hidden', timeout: 10_000 });
    expect(errors).toEqual([]);
  });

  it('says large distances in words, in the visitor language: M 31 in French', async () => {
    const version = await publish(14, 'M 31');
    const context = await suite.browser.newContext({ viewport: DESKTOP });
    suite.contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${suite.server.baseUrl}/?lang=fr`);
    await waitForLive(page, version);
    await page.locator('#object-card').waitFor({ state: 'visible', timeout: 10_000 });
    const millions = new Intl.NumberFormat('fr', { notation: 'compact', compactDisplay: 'long', maximumSignificantDigits: 2 }).format(2_580_000);
    expect(millions).toBe('2,6 millions');
    await expect.poll(() => page.locator('#object-light').textContent()).toBe(`La lumière que vous voyez en est partie il y a ${millions} d'années`);
    expect(await page.locator('#object-distance').textContent()).toBe(`à ${millions} d'années-lumière`);
    expect(await page.locator('#object-type').textContent()).toBe('galaxie spirale dans la constellation Andromeda');
  });

  it('Save without Web Share downloads the version with the server\'s file name', async () => {
    const version = await publish(21, 'M 31');
    const { page, errors } = await open();
    await waitForLive(page, version);
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), page.locator('#save-button').click()]);
    expect(download.suggestedFilename()).toMatch(/^M_31-\d{4}-\d{2}-\d{2}-stack21\.jpg$/);
    expect(new URL(download.url()).pathname).toBe(`/v/${version}/image.jpg`);
    expect(errors).toEqual([]);
  });

  it('Save with Web Share (level 2) shares one image/jpeg file named like the download', async () => {
    const version = await publish(22, 'M 31');
    const stub = `
      window.__shared = [];
      Object.defineProperty(navigator, 'canShare', { configurable: true, value: (data) => !!(data && data.files && data.files.length) });
      Object.defineProperty(navigator, 'share', { configurable: true, value: (data) => {
        window.__shared.push(data.files.map((f) => ({ name: f.name, type: f.type, size: f.size })));
        return Promise.resolve();
      } });`;
    const { page, errors } = await open(stub);
    await waitForLive(page, version);
    let downloads = 0;
    page.on('download', () => (downloads += 1));
    await page.locator('#save-button').click();
    await page.waitForFunction(() => (window as unknown as { __shared: unknown[] }).__shared.length > 0, undefined, { timeout: 15_000 });
    const shared = await page.evaluate(() => (window as unknown as { __shared: Array<Array<{ name: string; type: string; size: number }>> }).__shared);
    expect(shared).toHaveLength(1);
    expect(shared[0]).toHaveLength(1);
    expect(shared[0][0].type).toBe('image/jpeg');
    expect(shared[0][0].name).toMatch(/^M_31-\d{4}-\d{2}-\d{2}-stack22\.jpg$/);
    const full = await (await fetch(`${suite.server.baseUrl}/v/${version}/image.jpg`)).arrayBuffer();
    expect(shared[0][0].size).toBe(full.byteLength);
    expect(downloads).toBe(0);
    expect(errors).toEqual([]);
  });

  it('the timeline: scrubbed back (keyboard) it shows that frame and stays there when a new image arrives; the live chip returns', async () => {
    const versions = [await publish(31), await publish(32), await publish(33)];
    const { page, errors } = await open();
    const history = ((await (await fetch(`${suite.server.baseUrl}/api/history`)).json()) as { frames: Array<{ version: number; stackSize: number }> }).frames;
    await waitForLive(page, versions[2], history.length);
    const slider = page.locator('#timeline-range');
    await slider.waitFor({ state: 'visible' });

    await slider.focus();
    await page.keyboard.press('Home');
    const first = history[0];
    await page.waitForFunction((v) => (window as unknown as { stackcast: HistoryHook }).stackcast.scrubVersion === v, first.version);
    const preview = page.locator('#history-image');
    await expect.poll(() => preview.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0 && new URL(img.src).pathname)).toBe(`/h/${first.version}.jpg`);
    expect(await page.locator('#history-view').isVisible()).toBe(true);
    expect(await page.locator('#history-caption').textContent()).toContain(`stack ${first.stackSize} at `);
    expect(await slider.getAttribute('aria-valuetext')).toContain(`stack ${first.stackSize}`);
    expect(await page.locator('#live-chip').textContent()).toBe('live: stack 33');

    const fourth = await publish(57);
    await waitForLive(page, fourth, history.length + 1);
    await expect.poll(() => page.locator('#live-chip').textContent()).toBe('live: stack 57');
    expect((await viewerState(page)).scrubVersion).toBe(first.version);
    expect(await page.locator('#history-view').isVisible()).toBe(true);
    expect(new URL(await preview.evaluate((img: HTMLImageElement) => img.src)).pathname).toBe(`/h/${first.version}.jpg`);

    await page.locator('#live-chip').focus();
    await page.keyboard.press('Enter');
    await page.locator('#history-view').waitFor({ state: 'hidden' });
    expect((await viewerState(page)).scrubVersion).toBe(0);
    expect(await page.locator('#live-chip').isHidden()).toBe(true);
    expect(await slider.getAttribute('aria-valuetext')).toBe('live');
    expect(errors).toEqual([]);
  });

  it('Play flips through the night oldest first, then returns to live', async () => {
    const version = await publish(58);
    const { page, errors } = await open();
    const history = ((await (await fetch(`${suite.server.baseUrl}/api/history`)).json()) as { frames: Array<{ version: number }> }).frames;
    await waitForLive(page, version, history.length);
    await page.evaluate(() => {
      const seen: number[] = [];
      (window as unknown as { __seen: number[] }).__seen = seen;
      const img = document.getElementById('history-image') as HTMLImageElement;
      new MutationObserver(() => {
        const match = /\/h\/(\d+)\.jpg$/.exec(img.src);
        if (match) {
          seen.push(Number(match[1]));
        }
      }).observe(img, { attributes: true, attributeFilter: ['src'] });
    });
    await page.locator('#timeline-play').click();
    expect(await page.locator('#timeline-play').getAttribute('aria-pressed')).toBe('true');
    await page.locator('#history-view').waitFor({ state: 'hidden', timeout: 20_000 });
    const seen = await page.evaluate(() => (window as unknown as { __seen: number[] }).__seen);
    // Every frame but the live one, oldest first.
    expect(seen).toEqual(history.slice(0, -1).map((f) => f.version));
    expect(await page.locator('#timeline-play').getAttribute('aria-pressed')).toBe('false');
    expect((await viewerState(page)).scrubVersion).toBe(0);
    expect(errors).toEqual([]);
  });
});
