import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg } from '../helpers/images.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { launchBrowser } from './browser.js';

/** What the page shows once it started: its language and a few of its words and numbers. */
interface Shown {
  lang: string;
  title: string;
  exposureLabel: string;
  connection: string;
  stackSize: string;
  /** 12345 formatted by the page's own Intl for `locale`, to compare with `stackSize`. */
  expectedStack: string;
}

describe('the viewer speaks the visitor language', () => {
  let italian: TestServer;
  let auto: TestServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  /** A browser whose languages are `locale` (navigator.languages and Accept-Language). */
  async function open(server: TestServer, locale: string, path = '/'): Promise<Page> {
    const context = await browser.newContext({ locale, extraHTTPHeaders: { 'Accept-Language': locale } });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${server.baseUrl}${path}`);
    await page.waitForFunction(() => window.stackcast?.state === 'live' && document.getElementById('stack-size')?.textContent !== '–');
    return page;
  }

  function shown(page: Page, numberLocale: string): Promise<Shown> {
    return page.evaluate((numberLocale) => ({
      lang: document.documentElement.lang,
      title: document.title,
      exposureLabel: document.querySelector('[data-i18n="metric.exposure"]')?.textContent ?? '',
      connection: document.getElementById('conn-text')?.textContent ?? '',
      stackSize: document.getElementById('stack-size')?.textContent ?? '',
      expectedStack: new Intl.NumberFormat(numberLocale).format(12345),
    }), numberLocale);
  }

  beforeAll(async () => {
    [italian, auto, browser] = await Promise.all([
      startTestServer({ viewerLanguage: 'it', wifiSsid: 'Star;Party', wifiPassword: 'dark-sky-42' }),
      startTestServer(),
      launchBrowser(),
    ]);
    // An image, so the bar shows its age (before any, it says it waits for the first one).
    const jpeg = await makeJpeg();
    await Promise.all([italian, auto].map((server) => server.notifier.publish(jpeg, { stackSize: 12345, exposureSeconds: 600 })));
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await browser?.close();
    await italian?.close();
    await auto?.close();
  });

  it('?lang=fr wins over the browser and the server: French words, French numbers, <html lang="fr">', async () => {
    const page = await open(italian, 'de-DE', '/?lang=fr');
    const fr = await shown(page, 'fr');
    expect(fr).toMatchObject({ lang: 'fr', title: 'Empilement en direct', exposureLabel: 'Exposition', connection: 'en direct' });
    expect(fr.stackSize).toBe(fr.expectedStack);
    expect(fr.stackSize).not.toBe('12345');
    expect(await page.getAttribute('#share-button', 'title')).toBe('Afficher un QR code de cette page');
  });

  it("the browser's languages when ?lang= names none it speaks: German, 12.345", async () => {
    const page = await open(italian, 'de-DE', '/?lang=xx');
    const de = await shown(page, 'de-DE');
    expect(de).toMatchObject({ lang: 'de', exposureLabel: 'Belichtung', connection: 'live', stackSize: '12.345' });
    expect(await page.textContent('#updated')).toMatch(/^vor \d+ s$/);
  });

  it('VIEWER_LANGUAGE=it when the browser asks for a language the viewer does not speak', async () => {
    const page = await open(italian, 'pt-BR');
    const it_ = await shown(page, 'it');
    expect(it_).toMatchObject({ lang: 'it', exposureLabel: 'Esposizione', connection: 'in diretta', stackSize: '12.345' });
  });

  it('English otherwise (VIEWER_LANGUAGE=auto), as before: 12,345 and "s ago"', async () => {
    const page = await open(auto, 'pt-BR');
    const en = await shown(page, 'en');
    expect(en).toMatchObject({ lang: 'en', title: 'Live stack', exposureLabel: 'Exposure', connection: 'live', stackSize: '12,345' });
    expect(await page.textContent('#updated')).toMatch(/^\d+ s ago$/);
  });

  it('the Share dialog shows the Wi-Fi code as step 1 and the page as step 2, in the visitor language', async () => {
    const page = await open(italian, 'fr-FR');
    await page.click('#share-button');
    await page.waitForFunction(() => {
      const qr = document.getElementById('share-wifi-qr') as HTMLImageElement | null;
      return qr !== null && qr.complete && qr.naturalWidth > 0 && !document.getElementById('share-wifi')?.hidden;
    });
    expect(await page.textContent('#share-wifi .share-title')).toBe('1. Rejoignez le Wi-Fi');
    expect(await page.textContent('#share-ssid')).toBe('Star;Party');
    expect(await page.textContent('#share-title')).toBe('2. Ouvrez la page');
    expect(await page.getAttribute('#share-wifi-qr', 'alt')).toBe('QR code pour rejoindre le réseau Wi-Fi Star;Party');

    // Without WIFI_SSID: one step, as before.
    const plain = await open(auto, 'en-GB');
    await plain.click('#share-button');
    await plain.waitForFunction(() => (document.getElementById('share-url')?.textContent ?? '').startsWith('http'));
    expect(await plain.isHidden('#share-wifi')).toBe(true);
    expect(await plain.textContent('#share-title')).toBe('Scan to watch on your phone');
  });
});
