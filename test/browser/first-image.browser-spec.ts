import { describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { sharedServerAndBrowser, openViewer, screenshot, type OpenedPage } from './browser.js';

const PHONE = { width: 390, height: 844 };

describe('the waiting screen, before anything was published', () => {
  const suite = sharedServerAndBrowser();

  async function open(): Promise<OpenedPage> {
    const opened = await openViewer(suite.browser, suite.server.baseUrl, PHONE, { deviceScaleFactor: 3, isMobile: true, hasTouch: true });
    suite.contexts.push(opened.context);
    return opened;
  }

  it('says it waits for the first image, not "Updated N s ago"; once an image comes, its age', async () => {
    const data = (await (await fetch(`${suite.server.baseUrl}/data.json`)).json()) as { UPDATED: string | null };
    expect(data.UPDATED).toBeNull();
    const { page, errors } = await open();
    await page.waitForFunction(() => window.stackcast?.state === 'live' && window.stackcast.imageSeq > 0, undefined, { timeout: 15_000 });

    expect(await page.textContent('#updated')).toBe('waiting for the first image');
    const updated = await page.locator('#updated').boundingBox();
    expect(updated).not.toBeNull();
    expect(updated!.x + updated!.width).toBeLessThanOrEqual(PHONE.width + 0.5);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await screenshot(page, 'waiting-for-first-image');

    await suite.server.notifier.publish(await makeJpeg({ width: 640, height: 480 }), { stackSize: 1, exposureSeconds: 30 });
    await page.waitForFunction(() => /^\d+ s ago$/.test(document.getElementById('updated')?.textContent ?? ''), undefined, { timeout: 15_000 });
    expect(await page.textContent('#stack-size')).toBe('1');
    expect(errors).toEqual([]);
  });
});
