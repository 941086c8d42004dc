/// <reference lib="dom" />
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alsPage } from '../fixtures/als/als-page.js';
import { makeJpeg } from '../helpers/images.js';
import { makeTempFolder } from '../helpers/temp-folder.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { launchBrowser } from './browser.js';

/** What ALS's inline script did to its <img>: the src it set and the picture the browser decoded. */
interface AlsImage {
  src: string;
  complete: boolean;
  width: number;
}

const MODES: [string, boolean][] = [
  ['the work folder (default)', false],
  ['WEB_DEDICATED (a web folder of its own)', true],
];

/** The Accept-Encoding the browser sends, and the Content-Encoding the page must come with. */
const ENCODINGS: [string, string | undefined][] = [
  ['br', 'br'],
  ['gzip', 'gzip'],
  ['identity', undefined],
];

describe.each(MODES)("ALS's own page dropped into the web folder after START, in Chromium: %s", (_mode, dedicated) => {
  let browser: Browser;
  let server: TestServer;
  let temp: { path: string; remove(): Promise<void> };
  const contexts: BrowserContext[] = [];
  /** Width of the image published last: each image gets its own, so the page shows which it has. */
  let published = 320;

  beforeAll(async () => {
    temp = await makeTempFolder('stackcast-als-');
    const workFolder = join(temp.path, 'work');
    [browser, server] = await Promise.all([
      launchBrowser(),
      startTestServer(dedicated ? { workFolder, webFolder: join(temp.path, 'web') } : { workFolder }),
    ]);
    await server.notifier.publish(await makeJpeg({ width: 320, height: 200 }), { stackSize: 1, exposureSeconds: 10 });
    // As ALS writes it (refresh every second), after stackcast's START.
    await writeFile(join(server.webFolder, 'index.html'), alsPage(1));
  });
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await temp?.remove();
  });

  it.each(ENCODINGS)('Accept-Encoding %s: served as written, its inline script runs and shows the live image', async (accept, encoding) => {
    const context = await browser.newContext({ viewport: { width: 800, height: 600 }, extraHTTPHeaders: { 'Accept-Encoding': accept } });
    contexts.push(context);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') {
        problems.push(`console: ${m.text()}`);
      }
    });
    const response = await page.goto(`${server.baseUrl}/`);
    expect(response?.status()).toBe(200);
    const headers = await response!.allHeaders();
    expect(headers['content-encoding']).toBe(encoding);
    expect(headers['content-security-policy']).toBeUndefined();
    expect(await page.title()).toBe('ALS');

    const image = (): Promise<AlsImage> =>
      page.evaluate(() => {
        const img = document.getElementById('web_image') as HTMLImageElement;
        return { src: img.src, complete: img.complete, width: img.naturalWidth };
      });
    // The inline script's setInterval swaps in /web_image.jpg?t=<time>: it ran.
    await page.waitForFunction(() => (document.getElementById('web_image') as HTMLImageElement).src.includes('/web_image.jpg?t='), undefined, { timeout: 10_000 });
    await page.waitForFunction((w) => (document.getElementById('web_image') as HTMLImageElement).naturalWidth === w, published, { timeout: 10_000 });

    // A new image: the page's own refresh shows it.
    published += 16;
    await server.notifier.publish(await makeJpeg({ width: published, height: 200, color: { r: 20, g: 40, b: 200 } }), { stackSize: 2, exposureSeconds: 20 });
    await page.waitForFunction((w) => (document.getElementById('web_image') as HTMLImageElement).naturalWidth === w, published, { timeout: 10_000 });
    expect((await image()).complete).toBe(true);
    expect(problems).toEqual([]);
  });
});
